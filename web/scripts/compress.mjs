// Writes brotli (.br) and gzip (.gz) variants beside every text asset of
// dist/, which the web component serves to clients that accept them.
import { readdirSync, readFileSync, writeFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, gzipSync, constants } from "node:zlib";

const compressible = /\.(html|js|css|svg|json|webmanifest|txt)$/;

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      walk(path);
    } else if (compressible.test(name)) {
      const bytes = readFileSync(path);
      const brotli = brotliCompressSync(bytes, {
        params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length },
      });
      const gzip = gzipSync(bytes, { level: 9 });
      // A variant no smaller than the original is not worth a lookup.
      if (brotli.length < bytes.length) writeFileSync(`${path}.br`, brotli);
      if (gzip.length < bytes.length) writeFileSync(`${path}.gz`, gzip);
    }
  }
}

walk(fileURLToPath(new URL("../dist", import.meta.url)));
