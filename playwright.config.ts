import { defineConfig } from '@playwright/test';

// Browser tests run in Debian's Chromium (never a downloaded browser). WebGPU comes from SwiftShader
// through --enable-unsafe-webgpu; WebCodecs is built in.
const chromePath = process.env.CHROME_PATH ?? '/usr/bin/chromium';
const port = Number(process.env.E2E_PORT ?? 5174);

export default defineConfig({
  testDir: 'e2e',
  // Removes the tiny test model that the runtime spec files share (built once per run).
  globalTeardown: './e2e/global-teardown.ts',
  timeout: 180_000,
  expect: { timeout: 30_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    browserName: 'chromium',
    headless: true,
    launchOptions: {
      executablePath: chromePath,
      args: [
        '--enable-unsafe-webgpu',
        '--no-sandbox',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        // The browser's own form-autofill lookups (not the app's traffic; the privacy test counts every request).
        '--disable-features=AutofillServerCommunication',
      ],
    },
  },
  webServer: {
    command: `node node_modules/vite/bin/vite.js --port ${port} --strictPort --host 127.0.0.1`,
    url: `http://127.0.0.1:${port}`,
    env: { E2E_STATIC: '1' },
    reuseExistingServer: false,
    timeout: 120_000,
  },
});
