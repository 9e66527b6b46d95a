// A first script: console output streams as it happens, the last value is the result.
const greet = (name) => `hello, ${name}`;
console.log(greet("vm-system"));
console.log("an object:", { engine: "QuickJS", host: "wasmtime", limits: ["cpu", "wall", "memory"] });

const fib = (n) => (n < 2 ? n : fib(n - 1) + fib(n - 2));
fib(20);
