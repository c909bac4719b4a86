// Values on edges are immutable: plain objects and arrays are frozen deeply before other nodes see them. Class
// instances (tensors, datasets) and typed arrays keep their own immutability, since freezing them is impossible or
// would break their internals.
export function freezePlain<T>(value: T): T {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return value;
  const proto = Object.getPrototypeOf(value);
  if (Array.isArray(value)) {
    Object.freeze(value);
    for (const v of value) freezePlain(v);
  } else if (proto === Object.prototype || proto === null) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) freezePlain(v);
  }
  return value;
}
