/** The categories of the suite and the module that measures each (loaded on demand). */
import type { Category } from '../api/schema.ts';
import type { CategoryRunner } from './types.ts';

export const CATEGORY_MODULES: Record<Category, () => Promise<{ run: CategoryRunner }>> = {
  distributed: () => import('./distributed.ts'),
  gpu: () => import('./gpu.ts'),
  monitoring: () => import('./monitoring/index.ts'),
  scalability: () => import('./scalability.ts'),
  integration: () => import('./integration.ts'),
  stress: () => import('./stress.ts'),
};
