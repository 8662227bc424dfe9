// Drives a bundle's demo page (index.html) in headless Chromium: for each {text, context} row read as JSON from stdin,
// types it in, clicks Run and prints what the page shows, as a JSON list. Usage: node browser.mjs URL CHROMIUM_PATH
import puppeteer from "puppeteer-core";

const [url, executablePath] = process.argv.slice(2);
let input = "";
for await (const chunk of process.stdin) input += chunk;
const rows = JSON.parse(input);
const browser = await puppeteer.launch({
  executablePath, headless: true, userDataDir: undefined,
  // root in CI needs --no-sandbox; the rest keep Chromium off the (closed) network
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage();
  const logs = [];
  page.on("console", (msg) => logs.push(`${msg.type()}: ${msg.text()}`));
  page.on("pageerror", (err) => logs.push(`pageerror: ${err.message}`));
  await page.goto(url, { waitUntil: "load", timeout: 60000 });
  await page.waitForFunction(() => !document.getElementById("run").disabled
    || document.getElementById("status").dataset.state === "error", { timeout: 120000 });
  const status = await page.$eval("#status", (el) => el.textContent);
  if (status.startsWith("error")) throw new Error(`the page failed to load the bundle: ${status}\n${logs.join("\n")}`);
  const out = [];
  for (const { text, context } of rows) {
    await page.$eval("#text", (el, v) => { el.value = v; }, text);
    if (context != null) await page.$eval("#context", (el, v) => { el.value = v; }, context);
    await page.$eval("#output", (el) => { delete el.dataset.state; });
    await page.click("#run");
    await page.waitForSelector("#output[data-state]", { timeout: 120000 });
    const [state, shown] = await page.$eval("#output", (el) => [el.dataset.state, el.textContent]);
    out.push(state === "done" ? JSON.parse(shown) : { error: shown });
  }
  console.log(JSON.stringify({ status, results: out }));
} finally {
  await browser.close();
}
