import { defineConfig } from 'vitest/config';

/**
 * The network and pipeline tests run twice: on the pinned onnxruntime-node and on the CUDA 12
 * build's (onnxruntime-node-cuda12, loaded in its place on Colab-style machines), through its
 * CPU provider, so no graph uses an operator, attribute or opset the older runtime lacks.
 */
const ENGINE_TESTS = ['test/networks.test.ts', 'test/graph-builder.test.ts', 'test/pipeline.test.ts', 'test/rife.test.ts', 'test/rife-video.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // The page's build, once for every suite that serves it.
    globalSetup: ['test/global-setup.ts'],
    projects: [
      { extends: true, test: { name: 'main', include: ['test/**/*.test.ts'] } },
      {
        extends: true,
        resolve: { alias: { 'onnxruntime-node': 'onnxruntime-node-cuda12' } },
        test: { name: 'onnxruntime-cuda12-build', include: ENGINE_TESTS, env: { SVD_ONNXRUNTIME_PACKAGE: 'onnxruntime-node-cuda12' } },
      },
    ],
  },
});
