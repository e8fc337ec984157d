import { Registry } from 'prom-client';

/**
 * Every component takes the registry it registers its metrics on, so a process serves one
 * registry on `/metrics` and each test gets a fresh one.
 */
export function createRegistry(): Registry {
  return new Registry();
}

export { Registry };
