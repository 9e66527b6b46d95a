// A script that never ends: the wall-clock limit stops it (exit code 3).
// Try: vm-system run examples/runaway.js --wall-ms 200
console.log("spinning...");
while (true) {}
