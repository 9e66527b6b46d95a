// The modules: `fs` reads the session's worktree, `database` is the session's own SQLite file.
// It needs a daemon session whose template enables both (a one-shot `vm-system run` has no
// module). From the repository root:
//
//   vm-system serve &
//   vm-system template create inventory
//   vm-system template add-module inventory fs
//   vm-system template add-module inventory database
//   vm-system session create --template inventory --worktree examples    # prints the session id
//   vm-system exec run-file SESSION_ID inventory.mjs
//
// The fs module reads (it may not write unless a capability says `"write": true`); every call
// is a host call, recorded as an event of the execution.
import { readFileSync } from "fs";
import db from "database";

const items = JSON.parse(readFileSync("inventory.json"));
db.exec("CREATE TABLE IF NOT EXISTS item (sku TEXT PRIMARY KEY, name TEXT, count INTEGER, price REAL)");
for (const { sku, name, count, price } of items) {
  db.exec("INSERT OR REPLACE INTO item VALUES (?, ?, ?, ?)", sku, name, count, price);
}
const [{ lines, pieces, value }] = db.query(
  "SELECT count(*) AS lines, sum(count) AS pieces, round(sum(count * price), 2) AS value FROM item");
console.log(`${lines} lines, ${pieces} pieces, worth ${value}`);
const low = db.query("SELECT sku FROM item WHERE count < ? ORDER BY sku", 50).map((r) => r.sku);
export { lines, pieces, value, low };
