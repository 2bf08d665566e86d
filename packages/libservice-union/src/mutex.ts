/** One-at-a-time: the union's changes to its upper branch take turns. */
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(f: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(f);
    this.#tail = result.catch(() => {});
    return result;
  }
}
