/**
 * Adam over Float32Arrays, as torch.optim.Adam / AdamW compute it (β1 0.9, β2 0.999, ε 1e-8, bias
 * correction, ε added outside the square root). Weight decay, when set, is decoupled (AdamW:
 * p ← p − lr·λ·p before the Adam step) and applies to every tensor, biases included, as torch's
 * AdamW does by default. The moments are float32 like the parameters; each element is updated in
 * double precision in a fixed order, so the same gradients always give the same parameters.
 */

export interface AdamOptions {
  learningRate: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** Decoupled (AdamW) weight decay λ; 0 (default) is plain Adam. */
  weightDecay?: number;
}

/** The optimiser's state, plain data (it crosses worker threads and could be checkpointed). */
export interface AdamState {
  step: number;
  firstMoments: Float32Array[];
  secondMoments: Float32Array[];
}

export class Adam {
  private readonly learningRate: number;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly epsilon: number;
  private readonly weightDecay: number;
  private readonly state: AdamState;

  constructor(sizes: readonly number[], options: AdamOptions) {
    this.learningRate = options.learningRate;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
    validateAdamOptions(this.learningRate, this.beta1, this.beta2, this.epsilon, this.weightDecay);
    this.state = { step: 0, firstMoments: sizes.map((n) => new Float32Array(n)), secondMoments: sizes.map((n) => new Float32Array(n)) };
  }

  get steps(): number {
    return this.state.step;
  }

  snapshot(): AdamState {
    return { step: this.state.step, firstMoments: this.state.firstMoments.map((m) => m.slice()), secondMoments: this.state.secondMoments.map((v) => v.slice()) };
  }

  /** Continues from a snapshot (a checkpoint): the same sizes as the constructor's; the moments are copied. */
  restore(state: AdamState): void {
    const sizes = this.state.firstMoments.map((m) => m.length);
    const fits = (moments: Float32Array[]) => moments.length === sizes.length && moments.every((m, k) => m.length === sizes[k]);
    if (!Number.isSafeInteger(state.step) || state.step < 0 || !fits(state.firstMoments) || !fits(state.secondMoments)) throw new RangeError('Adam state does not fit these parameters');
    this.state.step = state.step;
    state.firstMoments.forEach((m, k) => this.state.firstMoments[k].set(m));
    state.secondMoments.forEach((v, k) => this.state.secondMoments[k].set(v));
  }

  /** Updates `parameters` in place from `gradients` (same order and sizes as the constructor's). */
  step(parameters: readonly Float32Array[], gradients: readonly Float32Array[]): void {
    const { firstMoments, secondMoments } = this.state;
    if (parameters.length !== firstMoments.length || gradients.length !== firstMoments.length) throw new RangeError(`Adam tracks ${firstMoments.length} tensors, got ${parameters.length} parameters and ${gradients.length} gradients`);
    const t = ++this.state.step;
    const { beta1, beta2, epsilon, learningRate } = this;
    const oneMinusBeta1 = 1 - beta1;
    const oneMinusBeta2 = 1 - beta2;
    const stepSize = learningRate / (1 - beta1 ** t);
    const inverseSecondCorrectionRoot = 1 / Math.sqrt(1 - beta2 ** t);
    const decay = 1 - learningRate * this.weightDecay;
    for (let k = 0; k < parameters.length; k++) {
      const p = parameters[k];
      const g = gradients[k];
      const m = firstMoments[k];
      const v = secondMoments[k];
      if (p.length !== m.length || g.length !== m.length) throw new RangeError(`Adam tensor ${k} has ${m.length} values, got ${p.length} parameters and ${g.length} gradients`);
      updateTensor(p, g, m, v, beta1, oneMinusBeta1, beta2, oneMinusBeta2, stepSize, inverseSecondCorrectionRoot, epsilon, decay);
    }
  }
}

/** One tensor's update; a flat function of numbers and typed arrays so V8 keeps the loop tight. */
function updateTensor(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  beta1: number,
  oneMinusBeta1: number,
  beta2: number,
  oneMinusBeta2: number,
  stepSize: number,
  inverseSecondCorrectionRoot: number,
  epsilon: number,
  decay: number,
): void {
  for (let i = 0; i < p.length; i++) {
    const gi = g[i];
    m[i] = beta1 * m[i] + oneMinusBeta1 * gi;
    v[i] = beta2 * v[i] + oneMinusBeta2 * gi * gi;
    // torch: p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε), reading back the stored (float32) moments.
    p[i] = p[i] * decay - (stepSize * m[i]) / (Math.sqrt(v[i]) * inverseSecondCorrectionRoot + epsilon);
  }
}

function validateAdamOptions(learningRate: number, beta1: number, beta2: number, epsilon: number, weightDecay: number): void {
  if (!(Number.isFinite(learningRate) && learningRate > 0)) throw new RangeError(`learning rate must be a finite number > 0, got ${learningRate}`);
  for (const [name, beta] of [['beta1', beta1], ['beta2', beta2]] as const) {
    if (!(beta >= 0 && beta < 1)) throw new RangeError(`${name} must be in [0, 1), got ${beta}`);
  }
  if (!(Number.isFinite(epsilon) && epsilon > 0)) throw new RangeError(`epsilon must be a finite number > 0, got ${epsilon}`);
  if (!(Number.isFinite(weightDecay) && weightDecay >= 0)) throw new RangeError(`weight decay must be a finite number ≥ 0, got ${weightDecay}`);
}
