// What a synchronous call throws, for tests that look at an error's fields rather than only its message.

/** What `run` throws (undefined when it returns). */
export function thrown(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  return undefined;
}
