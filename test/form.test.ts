// The page's form values as models change (client/src/form.ts, pure functions).
import { describe, expect, it } from 'vitest';
import { defaultValues, modelLabel, withModel, type ModelChoice } from '../client/src/form.js';

const xt: ModelChoice = { name: 'stable-video-diffusion-img2vid-xt', demo: false, frames: 25 };
const fast: ModelChoice = { name: 'AnimateLCM-SVD-xt', demo: false, frames: 25, fast: true };
const demo: ModelChoice = { name: 'demo', demo: true, frames: 5 };

describe('form values by model', () => {
  it('offers AnimateLCM as "Fast (4 steps)" with the reference settings, and gives the full ones back', () => {
    expect(modelLabel(fast)).toBe('Fast (4 steps) · AnimateLCM-SVD-xt');
    const f = defaultValues(fast);
    expect([f.steps, f.minGuidance, f.maxGuidance, f.motionBucket, f.fps, f.width, f.height]).toEqual(['4', '1', '1.2', '80', '7', '1024', '576']);
    const toFast = withModel({ ...defaultValues(xt), seed: '9', noiseAug: '0.1' }, xt, fast);
    expect(toFast).toEqual({ ...f, seed: '9', noiseAug: '0.1' });
    const back = withModel(toFast, fast, xt);
    expect([back.steps, back.minGuidance, back.maxGuidance, back.motionBucket, back.fps, back.seed]).toEqual(['25', '1', '3', '127', '7', '9']);
    // From the demo: the real size and the fast settings.
    const fromDemo = withModel(defaultValues(demo), demo, fast);
    expect([fromDemo.steps, fromDemo.width, fromDemo.maxGuidance]).toEqual(['4', '1024', '1.2']);
    // Between two models of one kind the user's values stay.
    expect(withModel({ ...f, steps: '6' }, fast, { ...fast, name: 'other' }).steps).toBe('6');
  });
});
