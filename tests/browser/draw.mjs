// draw.mjs - drives a real Chromium (headless, playwright-core) to draw
// digits on the `digits serve` page with mouse events, as a user would,
// and checks what the page shows: the answer, the probability bars, the
// 28x28 picture the network saw, clearing with Escape and the button, no
// errors in the console (a CSP that blocked the page's own script or
// style would show there), and a phone-sized layout without sideways
// scrolling, where a finger (touch events) draws too. Saves a screenshot
// of each drawing in OUT.
// Usage: node tests/browser/draw.mjs URL OUT   (CHROMIUM: the browser)
import { chromium } from "playwright-core";

const [url, out] = process.argv.slice(2);
if (!url || !out) {
  console.error("usage: node draw.mjs URL OUT");
  process.exit(2);
}
let failed = 0, passed = 0;
function check(cond, what) {
  if (cond) passed++;
  else { failed++; console.log("FAIL: " + what); }
}

// Strokes in the canvas' own pixels (280 x 280), as a person draws them.
function ellipse(cx, cy, rx, ry, n) {
  const p = [];
  for (let i = 0; i <= n; i++) {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / n;
    p.push([cx + rx * Math.cos(a), cy + ry * Math.sin(a)]);
  }
  return p;
}
const DIGITS = [
  { digit: 1, strokes: [[[150, 45], [140, 140], [135, 235]]] },
  { digit: 7, strokes: [[[70, 55], [205, 50], [160, 130], [120, 240]]] },
  { digit: 0, strokes: [ellipse(140, 140, 62, 95, 48)] },
];

async function draw(page, strokes) {
  const box = await page.locator("#pad").boundingBox();
  const at = ([x, y]) => [box.x + (x * box.width) / 280, box.y + (y * box.height) / 280];
  for (const s of strokes) {
    const [x0, y0] = at(s[0]);
    await page.mouse.move(x0, y0);
    await page.mouse.down();
    for (const pt of s.slice(1)) {
      const [x, y] = at(pt);
      await page.mouse.move(x, y, { steps: 12 });
    }
    await page.mouse.up();
  }
}

// Waits until the page has no prediction pending and has shown more than
// `before` answers; returns what it shows.
async function settle(page, before) {
  await page.waitForFunction(
    (n) => document.body.dataset.pending === "0" && Number(document.body.dataset.answers) > n,
    before, { timeout: 10000 });
  await page.waitForTimeout(250);   // the bars' 120 ms transition
  return page.evaluate(() => {
    const seen = document.getElementById("seen").getContext("2d").getImageData(0, 0, 28, 28).data;
    let m = 0, sx = 0, sy = 0, ink = 0;
    for (let i = 0; i < 784; i++) {
      const v = seen[4 * i];
      if (v > 0) ink++;
      m += v; sx += v * (i % 28); sy += v * Math.floor(i / 28);
    }
    const rows = [...document.querySelectorAll("#bars li")];
    return {
      answer: document.getElementById("answer").textContent,
      status: document.getElementById("status").textContent,
      answers: Number(document.body.dataset.answers),
      top: rows.findIndex((li) => li.classList.contains("top")),
      // as drawn: each fill's width in percent of its bar
      widths: rows.map((li) => 100 * li.querySelector(".fill").getBoundingClientRect().width /
        li.querySelector(".bar").getBoundingClientRect().width),
      ink, cx: m ? sx / m : -1, cy: m ? sy / m : -1,
    };
  });
}

async function blankState(page) {
  return page.evaluate(() => {
    const seen = document.getElementById("seen").getContext("2d").getImageData(0, 0, 28, 28).data;
    let lit = 0;
    for (let i = 0; i < 784; i++) lit += seen[4 * i] > 0;
    const pad = document.getElementById("pad").getContext("2d").getImageData(0, 0, 280, 280).data;
    let dark = 0;
    for (let i = 0; i < pad.length; i += 4) dark += pad[i] < 255;
    return { answer: document.getElementById("answer").textContent, lit, dark };
  });
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/lib/chromium/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const context = await browser.newContext({ viewport: { width: 900, height: 760 } });
  const page = await context.newPage();
  const errors = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(url);
  await page.waitForFunction(() => /parameters/.test(document.getElementById("model").textContent),
    null, { timeout: 10000 });
  check((await page.locator("#bars li").count()) === 10, "10 probability bars");
  check(await page.locator("[aria-live]").count() >= 1, "an aria-live region");
  check(await page.locator("#pad").getAttribute("aria-label") !== null, "the canvas has a label");

  for (const { digit, strokes } of DIGITS) {
    await page.keyboard.press("Escape");
    const before = Number(await page.evaluate(() => document.body.dataset.answers));
    await draw(page, strokes);
    const got = await settle(page, before);
    check(got.answer === String(digit), `drew a ${digit}, the page says '${got.answer}' (${got.status})`);
    check(got.top === digit, `drew a ${digit}, the highlighted bar is ${got.top}`);
    check(got.widths[digit] > 50, `drew a ${digit}, its bar is ${got.widths[digit]}% wide`);
    const sum = got.widths.reduce((a, b) => a + b, 0);
    check(Math.abs(sum - 100) < 1.5, `bars sum to ${sum}%`);
    check(got.ink > 20 && got.ink < 500, `28x28 preview has ${got.ink} ink pixels`);
    check(Math.abs(got.cx - 14) < 1.5 && Math.abs(got.cy - 14) < 1.5,
      `28x28 preview's centre of mass (${got.cx.toFixed(2)}, ${got.cy.toFixed(2)}) is near (14, 14), as MNIST's`);
    await page.screenshot({ path: `${out}/draw-${digit}.png` });
    console.log(`drew a ${digit}: the page says ${got.answer}; ${got.status}`);
  }
  // updates while drawing: a long stroke shows answers before it ends
  await page.keyboard.press("Escape");
  const box = await page.locator("#pad").boundingBox();
  const before = Number(await page.evaluate(() => document.body.dataset.answers));
  await page.mouse.move(box.x + box.width / 2, box.y + box.height * 0.15);
  await page.mouse.down();
  for (let i = 1; i <= 10; i++) {
    await page.mouse.move(box.x + box.width / 2, box.y + box.height * (0.15 + 0.07 * i), { steps: 2 });
    await page.waitForTimeout(60);
  }
  const during = Number(await page.evaluate(() => document.body.dataset.answers));
  await page.mouse.up();
  check(during > before, `answers while drawing (${during - before} before the pen lifted)`);
  await settle(page, during - 1).catch(() => {});

  // clearing: Escape, and the button
  await page.keyboard.press("Escape");
  let b = await blankState(page);
  check(b.answer === "–" && b.lit === 0 && b.dark === 0, `Escape clears: ${JSON.stringify(b)}`);
  await draw(page, DIGITS[0].strokes);
  await settle(page, Number(await page.evaluate(() => document.body.dataset.answers)) - 1);
  await page.getByRole("button", { name: "Clear" }).click();
  b = await blankState(page);
  check(b.answer === "–" && b.lit === 0 && b.dark === 0, `the Clear button clears: ${JSON.stringify(b)}`);
  check(errors.length === 0, `console errors: ${errors.join(" | ")}`);

  // a phone: 390 x 844, no sideways scrolling, drawing still works
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2,
    hasTouch: true, isMobile: true });
  const pp = await phone.newPage();
  await pp.goto(url);
  const wide = await pp.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(wide <= 0, `phone layout scrolls sideways by ${wide} px`);
  await draw(pp, DIGITS[1].strokes);
  const ph = await settle(pp, 0);
  check(ph.answer === "7", `phone: drew a 7, the page says '${ph.answer}'`);
  await pp.screenshot({ path: `${out}/phone-7.png`, fullPage: true });

  // a finger: a 1 drawn with touch events (pointer events of type touch)
  await pp.keyboard.press("Escape");
  const cdp = await phone.newCDPSession(pp);
  const pbox = await pp.locator("#pad").boundingBox();
  const tp = (x, y) => [{ x: pbox.x + (x * pbox.width) / 280, y: pbox.y + (y * pbox.height) / 280, id: 1 }];
  const seenBefore = Number(await pp.evaluate(() => document.body.dataset.answers));
  await cdp.send("Input.dispatchTouchEvent", { type: "touchStart", touchPoints: tp(145, 45) });
  for (let i = 1; i <= 20; i++)
    await cdp.send("Input.dispatchTouchEvent", { type: "touchMove", touchPoints: tp(145 - i * 0.5, 45 + i * 9.5) });
  await cdp.send("Input.dispatchTouchEvent", { type: "touchEnd", touchPoints: [] });
  const tch = await settle(pp, seenBefore);
  check(tch.answer === "1", `touch: drew a 1 with a finger, the page says '${tch.answer}'`);
  await pp.screenshot({ path: `${out}/phone-touch-1.png` });
} finally {
  await browser.close();
}
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
