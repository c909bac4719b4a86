// What the FLUX sampler tests check against, written from the published formulas rather than the code
// under test: BFL's compute_empirical_mu and time-SNR shift, and a velocity field with a recording model call.

/** FLUX.2's μ for an image of `seqLen` tokens sampled in `steps` steps (BFL's compute_empirical_mu). */
export function empiricalMu(seqLen: number, steps: number): number {
  const m200 = 0.00016927 * seqLen + 0.45666666;
  if (seqLen > 4300) return m200;
  const m10 = 8.73809524e-5 * seqLen + 1.89833333;
  return m10 + ((steps - 10) * (m200 - m10)) / 190;
}

/** The time-SNR shift by e^μ of a noise level t (0 stays 0). */
export const shifted = (mu: number, t: number) => (t <= 0 ? 0 : Math.exp(mu) / (Math.exp(mu) + (1 / t - 1)));

/** A velocity field that depends on x, t and which half (uncond/cond) a row is in, so every mix is visible. */
export const velocity = (x: number, t: number, cond: boolean, i: number) => (cond ? -0.8 * x + Math.sin(i + 3 * t) : 0.3 * x - t);

/** The ModelCall a family's sampler drives: [uncond | cond] halves in, velocities out; records its timesteps. */
export function fakeCall() {
  const timesteps: number[] = [];
  const call = async (xs: Float32Array, timestep: number) => {
    timesteps.push(timestep);
    const half = xs.length / 2;
    return Float32Array.from(xs, (x, j) => velocity(x, timestep / 1000, j >= half, j % half));
  };
  return { call, timesteps };
}
