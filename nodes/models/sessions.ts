// Compiled ORT sessions kept per weight source, runtime and graph shape, so repeated encodes and samples
// with the same shapes reuse one session instead of compiling the model again. Held weakly by the
// weights and the runtime: when a MODEL/CLIP/VAE value is dropped from the executor's cache, its
// sessions can go too, and a session made on a runtime that was closed is never handed to another.
import { defaultRuntime, type CompiledGraph, type Runtime, type Session } from '../../kernels';

const byOwner = new WeakMap<object, WeakMap<Runtime, Map<string, Promise<Session>>>>();

/** The session for (`owner`, `key`), compiling `build()` on first use; a failed build is not remembered. */
export function cachedSession(owner: object, key: string, build: () => CompiledGraph, rt: Runtime = defaultRuntime()): Promise<Session> {
  let byRuntime = byOwner.get(owner);
  if (!byRuntime) byOwner.set(owner, (byRuntime = new WeakMap()));
  let sessions = byRuntime.get(rt);
  if (!sessions) byRuntime.set(rt, (sessions = new Map()));
  let s = sessions.get(key);
  if (!s) {
    s = Promise.resolve().then(() => rt.load(build()));
    s.catch(() => sessions!.delete(key));
    sessions.set(key, s);
  }
  return s;
}
