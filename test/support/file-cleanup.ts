// Runs in every test file (vitest setupFiles): after the file, the temp dirs helpers made for it go.
import { afterAll } from 'vitest';
import { removeTrackedTempDirs } from './temp-dirs.js';

afterAll(() => removeTrackedTempDirs());
