// Load timing of the UI in headless Chromium, for `make bench-ui`: with a
// session (TOKEN) for a user with many files, from navigation to the
// first page of the list drawn (and each further page after "Load more");
// and, as the baseline, navigation to the login form drawn without one.
// Prints one JSON object.
import { chromium } from "playwright-core";

const base = process.env.BASE_URL;
const token = process.env.TOKEN;
const runs = Number(process.env.RUNS ?? 5);
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
const login = [];
const list = [];
const pages = [];
try {
  for (let run = 0; run < runs; run += 1) {
    // A fresh context each run: nothing cached, as on a first visit.
    const anonymous = await (await browser.newContext()).newPage();
    await anonymous.goto(base);
    await anonymous.getByRole("heading", { name: "Log in" }).waitFor();
    login.push(await anonymous.evaluate(() => performance.now()));
    await anonymous.context().close();

    const context = await browser.newContext();
    await context.addInitScript((value) => localStorage.setItem("spindrive.token", value), token);
    const page = await context.newPage();
    await page.goto(base);
    await page.locator("tbody tr").nth(49).waitFor();
    list.push(await page.evaluate(() => performance.now()));
    for (let shown = 50; shown < 1000; shown += 50) {
      // Timed inside the page, from the click to the frame that shows
      // the new rows, so the driver's own round trips do not count.
      const ms = await page.evaluate(async (want) => {
        const started = performance.now();
        [...document.querySelectorAll("button")].find((b) => b.textContent === "Load more").click();
        while (document.querySelectorAll("tbody tr").length < want) {
          await new Promise((resolve) => requestAnimationFrame(resolve));
        }
        return performance.now() - started;
      }, shown + 50);
      pages.push(ms);
    }
    await context.close();
  }
} finally {
  await browser.close();
}
console.log(
  JSON.stringify({
    login_ms: median(login),
    first_page_ms: median(list),
    next_page_ms: median(pages),
    slowest_next_page_ms: Math.max(...pages),
    runs,
  }),
);
