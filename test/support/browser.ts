/**
 * Headless Debian Chromium driven by puppeteer-core: opens an MLflow run's "Model metrics" page, waits
 * until the named charts have drawn their line traces, and saves a screenshot; opens an HTML artifact in the
 * run's Artifacts tab and reads the document MLflow renders in its iframe.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import puppeteer from 'puppeteer-core';

export function chromiumPath(): string {
  const candidates = [process.env.EWTUNE_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((p): p is string => !!p);
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`no Chromium found (tried ${candidates.join(', ')}); install Debian's chromium (.ci/run does)`);
  return found;
}

export interface ChartCheck {
  /** Chart titles found on the page. */
  readonly titles: string[];
  /** For each requested metric key: vertices of its drawn line (plotly drops collinear points; 0 if not drawn). */
  readonly pointsByKey: Record<string, number>;
  /** For each requested metric key: the y-axis tick labels of its chart, as drawn (e.g. ["−80", "−60"]). */
  readonly yTicksByKey: Record<string, string[]>;
  readonly screenshot: string;
}

function launchChromium() {
  return puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}

export async function screenshotRunCharts(options: {
  trackingUri: string;
  experimentId: string;
  runId: string;
  metricKeys: readonly string[];
  screenshotPath: string;
  timeoutMs?: number;
}): Promise<ChartCheck> {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 1100 });
    const url = `${options.trackingUri.replace(/\/$/, '')}/#/experiments/${options.experimentId}/runs/${options.runId}/model-metrics`;
    await page.goto(url, { waitUntil: 'networkidle0', timeout: options.timeoutMs ?? 60_000 });
    // Wait until every requested chart has a drawn line with at least one point.
    await page.waitForFunction(
      (keys: string[]) => {
        const cards = [...document.querySelectorAll('.js-plotly-plot')];
        const text = document.body.innerText;
        return keys.every((k) => text.includes(k)) && cards.length >= keys.length && cards.every((c) => c.querySelector('.scatterlayer .trace'));
      },
      { timeout: options.timeoutMs ?? 60_000, polling: 250 },
      [...options.metricKeys],
    );
    await page.mouse.move(0, 0); // keep plotly's hover toolbar out of the picture
    const result = await page.evaluate((keys: string[]) => {
      const titles = [...new Set([...document.querySelectorAll('*')].filter((e) => e.children.length === 0 && keys.some((k) => e.textContent === k)).map((e) => e.textContent ?? ''))];
      const pointsByKey: Record<string, number> = {};
      const yTicksByKey: Record<string, string[]> = {};
      for (const k of keys) {
        // Each chart card's legend names its series "<run name> (<key>)".
        const plot = [...document.querySelectorAll('.js-plotly-plot')].find((p) => (p.parentElement?.parentElement?.parentElement?.textContent ?? '').includes(`(${k})`));
        const d = plot?.querySelector('.scatterlayer .trace .lines path.js-line')?.getAttribute('d') ?? '';
        pointsByKey[k] = d ? (d.match(/L/g) ?? []).length + 1 : 0;
        yTicksByKey[k] = [...(plot?.querySelectorAll('.ytick text') ?? [])].map((t) => t.textContent ?? '');
      }
      return { titles, pointsByKey, yTicksByKey };
    }, [...options.metricKeys]);
    mkdirSync(dirname(options.screenshotPath), { recursive: true });
    // A full-page screenshot resizes the viewport, which makes the UI redraw every chart (a spinner per panel in the
    // picture): instead make the viewport as tall as the page, wait for the drawn lines again, then take the viewport.
    const height = await page.evaluate(() => Math.max(0, ...[...document.querySelectorAll('.js-plotly-plot')].map((e) => e.getBoundingClientRect().bottom + window.scrollY)) + 120);
    await page.setViewport({ width: 1400, height: Math.min(Math.max(Math.ceil(height), 1100), 4000) });
    await page.waitForFunction(
      (keys: string[]) => {
        const cards = [...document.querySelectorAll('.js-plotly-plot')];
        return cards.length >= keys.length && cards.every((c) => c.querySelector('.scatterlayer .trace .lines path.js-line'));
      },
      { timeout: options.timeoutMs ?? 60_000, polling: 250 },
      [...options.metricKeys],
    );
    await page.mouse.move(0, 0);
    await page.screenshot({ path: options.screenshotPath as `${string}.png` });
    return { ...result, screenshot: options.screenshotPath };
  } finally {
    await browser.close();
  }
}

/** What the MLflow artifact viewer showed for one HTML artifact (rendered in a sandboxed iframe). */
export interface ArtifactViewCheck {
  /** The artifact document's `<h1>`. */
  readonly heading: string;
  /** `<svg>` charts in the artifact document. */
  readonly svgCount: number;
  /** Text of every chart's axis tick labels in the artifact document (vega's `role-axis-label` marks). */
  readonly axisLabels: string[];
  readonly screenshot: string;
}

/**
 * Opens the run's Artifacts tab on `artifactPath` (an .html artifact), waits until the file tree lists it, the
 * loading placeholders are gone and the viewer's iframe holds a document with at least one `<svg>`; saves a screenshot
 * of the viewport (the tab as a user sees it).
 */
export async function screenshotHtmlArtifact(options: {
  trackingUri: string;
  experimentId: string;
  runId: string;
  artifactPath: string;
  screenshotPath: string;
  timeoutMs?: number;
}): Promise<ArtifactViewCheck> {
  const timeout = options.timeoutMs ?? 60_000;
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 1100 });
    const url = `${options.trackingUri.replace(/\/$/, '')}/#/experiments/${options.experimentId}/runs/${options.runId}/artifacts/${options.artifactPath}`;
    await page.goto(url, { waitUntil: 'networkidle0', timeout });
    const name = options.artifactPath.split('/').pop() as string;
    await page.waitForFunction(
      (file: string) => {
        const frame = document.querySelector('iframe');
        const box = frame?.getBoundingClientRect();
        return !!box && box.width > 100 && box.height > 100 && document.body.innerText.includes(file)
          && !document.querySelector('[class*="keleton"]');
      },
      { timeout, polling: 250 },
      name,
    );
    const handle = await page.$('iframe');
    const frame = await handle?.contentFrame();
    if (!frame) throw new Error(`the artifact viewer of ${options.artifactPath} has no iframe document`);
    await frame.waitForFunction(() => document.querySelectorAll('svg').length > 0, { timeout, polling: 250 });
    const seen = await frame.evaluate(() => ({
      heading: document.querySelector('h1')?.textContent ?? '',
      svgCount: document.querySelectorAll('svg').length,
      axisLabels: [...document.querySelectorAll('svg .role-axis-label text')].map((t) => t.textContent ?? ''),
    }));
    await page.mouse.move(0, 0);
    mkdirSync(dirname(options.screenshotPath), { recursive: true });
    await page.screenshot({ path: options.screenshotPath as `${string}.png` });
    return { ...seen, screenshot: options.screenshotPath };
  } finally {
    await browser.close();
  }
}
