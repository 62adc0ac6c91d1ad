import { defineConfig } from "vite";
import preact from "@preact/preset-vite";

// Assets are named by their content hash under assets/ (the web
// component caches those for a year) and nothing is loaded from a CDN.
export default defineConfig({
  plugins: [preact()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    target: "es2022",
  },
  server: {
    proxy: { "/api": "http://127.0.0.1:3000" },
  },
});
