// Once before every suite: the page's build, which the browser tests and the queue's page test
// serve. Built here and not per file, where two files building into client/dist at once, or one
// serving it while another rebuilds it, made each other fail.
import { execSync } from 'node:child_process';
import { PROJECT_ROOT } from '../models/paths.js';

export default function setup(): void {
  execSync('npm run -s build:client', { cwd: PROJECT_ROOT, stdio: 'inherit' });
}
