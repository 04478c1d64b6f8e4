// The choice of sampler by scheduler_config.json's `_class_name`; each implements the one
// interface in interface.ts, which is all the pipeline calls.
import type { SchedulerConfig } from '../configs.js';
import { AnimateLcmScheduler } from './animatelcm.js';
import { EulerKarrasScheduler } from './euler-karras.js';
import type { Scheduler } from './interface.js';

export type { Scheduler, StepExtras } from './interface.js';

/** The sampler a model's scheduler_config.json names (the config schema has already refused any other). */
export function createScheduler(config: SchedulerConfig): Scheduler {
  switch (config._class_name) {
    case 'EulerDiscreteScheduler':
      return new EulerKarrasScheduler(config);
    case 'AnimateLCMSVDStochasticIterativeScheduler':
      return new AnimateLcmScheduler(config);
  }
}
