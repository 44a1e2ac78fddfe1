/**
 * Where catalog builds keep their cache by default. A module of its own because every command
 * asks for it (cli/context.ts, cacheDirOf) and the rest of the catalog is loaded only by a
 * catalog build (docs/bench.md, "Start-up").
 */
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';

/**
 * The cache of catalog builds when neither --cache nor IMGMAKE_CACHE names one: one per user,
 * so every blueprint built from any folder shares the package stages ($XDG_CACHE_HOME/imgmake,
 * else ~/.cache/imgmake; root's is /root/.cache/imgmake).
 */
export function userCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env['XDG_CACHE_HOME'];
  return xdg && isAbsolute(xdg) ? join(xdg, 'imgmake') : join(homedir(), '.cache', 'imgmake');
}
