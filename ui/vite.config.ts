/// <reference types="vitest/config" />
import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'

// Component tests compute day boundaries in a fixed zone with DST (ui-anchors §3.3).
if (process.env.VITEST) process.env.TZ = 'Europe/Berlin'

// Tauri loads ui/dist as frontendDist; relative base so file/asset URLs resolve there.
export default defineConfig({
  base: './',
  plugins: [react()],
  clearScreen: false,
  server: { port: 5173, strictPort: true, host: '127.0.0.1' },
  build: {
    outDir: 'dist',
    target: 'safari15',
    sourcemap: false,
    chunkSizeWarningLimit: 1200,
  },
  test: {
    environment: 'jsdom',
    testTimeout: 40_000,
    globals: true,
    setupFiles: ['./src/test/setup.ts'],
    css: false,
  },
})
