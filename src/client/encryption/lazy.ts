// Code loaded on first use: the features an app may never call (secret storage, recovery,
// dehydration) are dynamic imports, which bundlers split into chunks of their own.

/** A value built once, on first `get()`; a failed build (a chunk the network lost) is tried again next time. */
export class Lazy<T> {
  readonly #build: () => Promise<T>;
  #value: T | undefined;
  #building: Promise<T> | undefined;

  constructor(build: () => Promise<T>) {
    this.#build = build;
  }

  /** The value if built already. */
  get value(): T | undefined {
    return this.#value;
  }

  get(): Promise<T> {
    if (this.#value !== undefined) return Promise.resolve(this.#value);
    this.#building ??= this.#build().then(
      (value) => {
        this.#value = value;
        return value;
      },
      (error: unknown) => {
        this.#building = undefined;
        throw error;
      },
    );
    return this.#building;
  }
}
