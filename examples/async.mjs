// An ES module with top-level await: promises settle inside the same limits.
const wait = (v) => new Promise((resolve) => resolve(v));
const parts = await Promise.all([wait("settled"), wait("inside"), wait("the sandbox")]);
console.log(parts.join(" "));
export const answer = 42;
