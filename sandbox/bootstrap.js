// The guest-side half of the engine, evaluated once when a sandbox is created (and therefore
// part of every image). It installs `console` and `print`, and returns the host's private
// helpers: how a value or an error is described when it leaves the guest, and how a global
// function is called with JSON arguments.
//
// Everything a helper needs is captured here, before any user code runs, so a script that
// replaces or redefines a built-in (JSON.stringify, Array.prototype.join, RegExp.prototype.exec,
// Symbol.iterator, Object.prototype.toString, a prototype's Symbol.toStringTag, ...) changes
// nothing the host sees. Three rules keep it so:
// * no regular expression on the rendering path: String.prototype.replace/test/split look up
//   Symbol.replace, exec, flags and lastIndex on the regexp (its prototype) when they run;
//   quoting, identifier tests and trimming are character loops instead;
// * no iteration protocol (for-of, spread, destructuring), no implicit conversion of an object
//   (template literals, `+`, String()) and no property read that can reach a built-in
//   prototype: built-ins are recognised by their internal slots (a captured getter or
//   Error.isError), their names and tags are the ones captured here;
// * every object the helpers build has a null prototype, or is an array only read by index.
// What belongs to the script (its getters, its toJSON, its proxies' traps, a name it gave an
// error class) is honoured, and may throw: the describers catch that. The host still treats
// what these helpers return as untrusted data and validates it.
//
// Cost: every loop is bounded by a cap (MAX_ITEMS, MAX_DEPTH, MAX_STRING, the preview and
// JSON sizes), never by the value's size: holes of a sparse array are skipped through its own
// keys, and rendering stops once the text is longer than what will be kept of it.
(function bootstrap(hostConsole, hostBridge) {
  'use strict';
  // QuickJS drops the line tables of these functions: every sandbox's heap carries them, and a
  // fresh sandbox must stay small enough for whole-copy checkpoints (sandbox/checkpoints.py).
  'use strip';
  const G = globalThis;
  const uncurry = Function.prototype.bind.bind(Function.prototype.call);
  const stringify = JSON.stringify;
  const parseJSON = JSON.parse;
  const ObjectKeys = Object.keys;
  const ReflectOwnKeys = Reflect.ownKeys;
  const ReflectApply = Reflect.apply;
  const getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
  const getOwnPropertySymbols = Object.getOwnPropertySymbols;
  const getPrototypeOf = Object.getPrototypeOf;
  const setPrototypeOf = Object.setPrototypeOf;
  const defineProperty = Object.defineProperty;
  const freeze = Object.freeze;
  const isArray = Array.isArray;
  const ObjectIs = Object.is;
  const StringCtor = String;
  const ErrorCtor = Error;
  const TypeErrorCtor = TypeError;
  const RangeErrorCtor = RangeError;
  const isErrorBrand = Error.isError;
  const ObjectProto = Object.prototype;
  const hasOwn = uncurry(Object.prototype.hasOwnProperty);
  const isEnumerable = uncurry(Object.prototype.propertyIsEnumerable);
  const join = uncurry(Array.prototype.join);
  const sliceString = uncurry(String.prototype.slice);
  const indexOfString = uncurry(String.prototype.indexOf);
  const charCodeAt = uncurry(String.prototype.charCodeAt);
  const toWellFormed = uncurry(String.prototype.toWellFormed);
  const repeat = uncurry(String.prototype.repeat);
  const fnToString = uncurry(Function.prototype.toString);
  const symbolToString = uncurry(Symbol.prototype.toString);
  const bigintToString = uncurry(BigInt.prototype.toString);
  const numberToString = uncurry(Number.prototype.toString);
  const numberValueOf = uncurry(Number.prototype.valueOf);
  const stringValueOf = uncurry(String.prototype.valueOf);
  const booleanValueOf = uncurry(Boolean.prototype.valueOf);
  const dateToISO = uncurry(Date.prototype.toISOString);
  const dateGetTime = uncurry(Date.prototype.getTime);
  const errorToString = uncurry(Error.prototype.toString);
  const regexpProto = RegExp.prototype;
  const regexpSource = uncurry(getOwnPropertyDescriptor(regexpProto, 'source').get);
  // The flags string is put together from the slots' own getters: RegExp.prototype.flags
  // reads each flag through the (pollutable) prototype.
  const REGEXP_FLAGS = [];
  {
    const names = ['hasIndices', 'd', 'global', 'g', 'ignoreCase', 'i', 'multiline', 'm',
      'dotAll', 's', 'unicode', 'u', 'unicodeSets', 'v', 'sticky', 'y'];
    for (let i = 0; i < names.length; i += 2) {
      const d = getOwnPropertyDescriptor(regexpProto, names[i]);
      if (d !== undefined && typeof d.get === 'function') {
        REGEXP_FLAGS[REGEXP_FLAGS.length] = uncurry(d.get);
        REGEXP_FLAGS[REGEXP_FLAGS.length] = names[i + 1];
      }
    }
    setPrototypeOf(REGEXP_FLAGS, null);
    freeze(REGEXP_FLAGS);
  }
  const mapSize = uncurry(getOwnPropertyDescriptor(Map.prototype, 'size').get);
  const setSize = uncurry(getOwnPropertyDescriptor(Set.prototype, 'size').get);
  const mapEntries = uncurry(Map.prototype.entries);
  const setValues = uncurry(Set.prototype.values);
  const mapIterNext = uncurry(getPrototypeOf(new Map().entries()).next);
  const setIterNext = uncurry(getPrototypeOf(new Set().values()).next);
  const typedArrayProto = getPrototypeOf(Uint8Array.prototype);
  const typedArrayLength = uncurry(getOwnPropertyDescriptor(typedArrayProto, 'length').get);
  const typedArrayTag = uncurry(getOwnPropertyDescriptor(typedArrayProto, Symbol.toStringTag).get);
  const arrayBufferByteLength = uncurry(getOwnPropertyDescriptor(ArrayBuffer.prototype, 'byteLength').get);
  const dateNow = Date.now;
  const mathFloor = Math.floor;
  const mapGet = uncurry(Map.prototype.get);
  const mapSet = uncurry(Map.prototype.set);
  const mapHas = uncurry(Map.prototype.has);
  const mapDelete = uncurry(Map.prototype.delete);
  const ErrorPrototype = Error.prototype;
  const MapPrototype = Map.prototype;
  const SetPrototype = Set.prototype;
  const DatePrototype = Date.prototype;
  const PromisePrototype = Promise.prototype;
  const ArrayBufferPrototype = ArrayBuffer.prototype;
  const NumberPrototype = Number.prototype;
  const StringPrototype = String.prototype;
  const BooleanPrototype = Boolean.prototype;
  const BigIntPrototype = BigInt.prototype;
  const AsyncFunctionPrototype = getPrototypeOf(async function () {});
  const GeneratorFunctionPrototype = getPrototypeOf(function* () {});
  const AsyncGeneratorFunctionPrototype = getPrototypeOf(async function* () {});
  const SymbolToStringTag = Symbol.toStringTag;

  const MAX_DEPTH = 2;
  const MAX_ITEMS = 100;
  const MAX_STRING = 10000;
  const BREAK_LENGTH = 80;
  const PREVIEW_LIMIT = 4096;
  const JSON_LIMIT = 1 << 20;
  // Containers nested deeper than this have no `json` (the value dict says why): the text
  // crosses the host's JSON parser, SQLite and HTTP clients, where deep nesting means deep
  // recursion. The host reads this line to check what it sends in (sandbox/sandbox.py).
  const JSON_MAX_DEPTH = 64;
  // Values (elements, properties) the JSON walk may visit: a value shared by many parents is
  // walked at each, and values JSON skips (undefined, functions) cost without adding text.
  const JSON_MAX_VALUES = 1 << 18;
  // Symbol keys looked at per object for the preview (only enumerable ones are shown).
  const MAX_SYMBOLS = 1000;
  // One console line's rendering stops here (it ends with '…'); the output caps are smaller.
  const CONSOLE_TEXT_LIMIT = 1 << 20;
  // Rendering may stop once this many characters beyond the kept length were produced: more
  // than BREAK_LENGTH, so every container whose text starts before the cut still decides its
  // layout (one line or several) as it would with all of its entries.
  const RENDER_MARGIN = BREAK_LENGTH + 16;

  // Built-in prototypes, by the constructor name they had at start-up. A property a script
  // plants on one of them (constructor, toJSON, Symbol.toStringTag) is not the value's own
  // doing: the describers ignore it. Prototypes of the script's own classes are honoured.
  const INTRINSICS = new Map();
  {
    const names = ['Object', 'Function', 'Array', 'String', 'Number', 'Boolean', 'Symbol', 'BigInt',
      'Date', 'RegExp', 'Error', 'EvalError', 'RangeError', 'ReferenceError', 'SyntaxError',
      'TypeError', 'URIError', 'AggregateError', 'InternalError', 'SuppressedError', 'Map', 'Set',
      'WeakMap', 'WeakSet', 'WeakRef', 'FinalizationRegistry', 'Promise', 'ArrayBuffer',
      'SharedArrayBuffer', 'DataView', 'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array',
      'Uint16Array', 'Int32Array', 'Uint32Array', 'Float16Array', 'Float32Array', 'Float64Array',
      'BigInt64Array', 'BigUint64Array', 'Iterator', 'DisposableStack', 'AsyncDisposableStack'];
    for (let i = 0; i < names.length; i++) {
      const d = getOwnPropertyDescriptor(G, names[i]);
      const c = d !== undefined ? d.value : undefined;
      if (typeof c !== 'function') continue;
      const p = getOwnPropertyDescriptor(c, 'prototype');
      if (p !== undefined && p.value !== null && typeof p.value === 'object') mapSet(INTRINSICS, p.value, names[i]);
    }
    const more = [
      [typedArrayProto, 'TypedArray'], [AsyncFunctionPrototype, 'AsyncFunction'],
      [GeneratorFunctionPrototype, 'GeneratorFunction'], [AsyncGeneratorFunctionPrototype, 'AsyncGeneratorFunction'],
      [getPrototypeOf(GeneratorFunctionPrototype.prototype), 'Object'],
      [GeneratorFunctionPrototype.prototype, 'Object'], [AsyncGeneratorFunctionPrototype.prototype, 'Object'],
      [getPrototypeOf([][Symbol.iterator]()), 'Object'], [getPrototypeOf(new Map().entries()), 'Object'],
      [getPrototypeOf(new Set().values()), 'Object'], [getPrototypeOf(''[Symbol.iterator]()), 'Object'],
      [getPrototypeOf(/a/[Symbol.matchAll]('')), 'Object'],
    ];
    for (let i = 0; i < more.length; i++) {
      if (more[i][0] !== null && typeof more[i][0] === 'object' && !mapHas(INTRINSICS, more[i][0])) {
        mapSet(INTRINSICS, more[i][0], more[i][1]);
      }
    }
  }

  // The Symbol.toStringTag each built-in prototype had at start-up ('Generator', 'Math', ...).
  const INTRINSIC_TAGS = new Map();
  {
    const protos = ReflectOwnKeys(G);
    for (let i = 0; i < protos.length; i++) {
      const d = getOwnPropertyDescriptor(G, protos[i]);
      const o = d !== undefined ? d.value : undefined;
      if (o !== null && typeof o === 'object') noteTag(o);
    }
    const it = mapEntries(INTRINSICS);
    for (let r = mapIterNext(it); !r.done; r = mapIterNext(it)) noteTag(r.value[0]);
  }
  function noteTag(o) {
    const d = getOwnPropertyDescriptor(o, Symbol.toStringTag);
    if (d !== undefined && typeof d.value === 'string') mapSet(INTRINSIC_TAGS, o, d.value);
  }

  // Arrays the helpers build must not reach setters a script may define on Array.prototype.
  function list() {
    const a = [];
    setPrototypeOf(a, null);
    return a;
  }
  function push(a, v) {
    // A null-prototype descriptor: `get`/`set` planted on Object.prototype must not count.
    defineProperty(a, a.length, { __proto__: null, value: v, writable: true, enumerable: true, configurable: true });
  }
  // Descriptors come back as ordinary objects: read their fields as own properties only.
  function isAccessor(d) {
    return !hasOwn(d, 'value') && (hasOwn(d, 'get') || hasOwn(d, 'set'));
  }
  function dataValue(d) {
    return d !== undefined && hasOwn(d, 'value') ? d.value : undefined;
  }
  function accessorLabel(d) {
    const g = hasOwn(d, 'get') && d.get !== undefined, s = hasOwn(d, 'set') && d.set !== undefined;
    return g && s ? '[Getter/Setter]' : (g ? '[Getter]' : '[Setter]');
  }

  // ----- what a value is: internal slots and prototype identity, never tags or names --------

  function protoOf(v) {
    try { return getPrototypeOf(v); } catch (e) { return null; }
  }

  // The nearest built-in prototype on v's chain (v itself included), or null.
  function nearestIntrinsic(v) {
    let p = v;
    for (let i = 0; p !== null && i < 100; i++) {
      if (mapHas(INTRINSICS, p)) return p;
      p = protoOf(p);
    }
    return null;
  }

  // A property of v the script defined (on v or a prototype of its own), read as a normal
  // property read would (a getter is called on v); undefined when the first definition found
  // belongs to a built-in prototype.
  function scriptProperty(v, key) {
    let p = v;
    for (let i = 0; p !== null && i < 100; i++) {
      if (mapHas(INTRINSICS, p)) return undefined;
      const d = getOwnPropertyDescriptor(p, key);
      if (d !== undefined) {
        if (hasOwn(d, 'value')) return d.value;
        const g = hasOwn(d, 'get') ? d.get : undefined;
        return typeof g === 'function' ? ReflectApply(g, v, list()) : undefined;
      }
      p = protoOf(p);
    }
    return undefined;
  }

  function isError(v) {
    if (isErrorBrand(v)) return true;
    let p = v;
    for (let i = 0; p !== null && i < 100; i++) {
      if (p === ErrorPrototype) return true;
      p = protoOf(p);
    }
    return false;
  }

  function hasSlot(check, v) {
    try { check(v); return true; } catch (e) { return false; }
  }

  // Which built-in kind of object v is: 'Map', 'Set', 'Date', 'RegExp', 'ArrayBuffer',
  // 'Promise', 'Number', 'String', 'Boolean', 'BigInt' or ''. The chain picks the candidate
  // (so an ordinary object never pays a failed slot check); the slot confirms it.
  function kindOf(v) {
    const p = nearestIntrinsic(v);
    if (p === null || p === ObjectProto) return '';
    if (p === MapPrototype) return hasSlot(mapSize, v) ? 'Map' : '';
    if (p === SetPrototype) return hasSlot(setSize, v) ? 'Set' : '';
    if (p === DatePrototype) return hasSlot(dateGetTime, v) ? 'Date' : '';
    if (p === regexpProto) return v !== regexpProto && hasSlot(regexpSource, v) ? 'RegExp' : '';
    if (p === ArrayBufferPrototype) return hasSlot(arrayBufferByteLength, v) ? 'ArrayBuffer' : '';
    if (p === PromisePrototype) return 'Promise';
    if (p === NumberPrototype) return hasSlot(numberValueOf, v) ? 'Number' : '';
    if (p === StringPrototype) return hasSlot(stringValueOf, v) ? 'String' : '';
    if (p === BooleanPrototype) return hasSlot(booleanValueOf, v) ? 'Boolean' : '';
    if (p === BigIntPrototype) return hasSlot(bigintToString, v) ? 'BigInt' : '';
    return '';
  }

  // What an object calls itself: a Symbol.toStringTag of the script's, or the one a built-in
  // (Math, JSON, a generator's prototype) had at start-up.
  function tagOf(v) {
    let p = v;
    try {
      for (let i = 0; p !== null && i < 100; i++) {
        if (mapHas(INTRINSIC_TAGS, p)) return mapGet(INTRINSIC_TAGS, p);
        if (mapHas(INTRINSICS, p)) return '';
        const d = getOwnPropertyDescriptor(p, SymbolToStringTag);
        if (d !== undefined) {
          const g = hasOwn(d, 'get') ? d.get : undefined;
          const t = hasOwn(d, 'value') ? d.value : (typeof g === 'function' ? ReflectApply(g, v, list()) : undefined);
          return typeof t === 'string' ? t : '';
        }
        p = protoOf(p);
      }
    } catch (e) { return ''; }
    return '';
  }

  function regexpText(v) {
    let flags = '';
    for (let i = 0; i < REGEXP_FLAGS.length; i += 2) if (REGEXP_FLAGS[i](v)) flags += REGEXP_FLAGS[i + 1];
    return '/' + regexpSource(v) + '/' + flags;
  }

  // ----- text without regular expressions ----------------------------------------------------

  // What is left of the current rendering's length budget (characters).
  let budget = 0;
  function spend(s) {
    budget -= s.length;
    return s;
  }

  function hex2(c) {
    return (c < 16 ? '0' : '') + numberToString(c, 16);
  }

  function escapeOf(c) {
    switch (c) {
      case 92: return '\\\\';
      case 10: return '\\n';
      case 13: return '\\r';
      case 9: return '\\t';
      case 8: return '\\b';
      case 12: return '\\f';
      case 11: return '\\v';
      default: return c < 32 || c === 127 ? '\\x' + hex2(c) : undefined;
    }
  }

  function quote(s) {
    let q = "'";
    if (indexOfString(s, "'") !== -1) q = indexOfString(s, '"') === -1 ? '"' : (indexOfString(s, '`') === -1 ? '`' : "'");
    const escapeQuote = q === "'" && indexOfString(s, "'") !== -1;
    // JSON escapes a superset of what needs escaping here (but for DEL and the quote), in
    // native code: most strings are copied as they are.
    if (!escapeQuote && indexOfString(s, '\x7f') === -1 && stringify(s).length === s.length + 2) {
      return spend(q + s + q);
    }
    let out = q, last = 0, i = 0;
    const n = s.length;
    for (; i < n; i++) {
      if (budget - i <= 0) break;  // the rest would be cut from the text anyway
      const c = charCodeAt(s, i);
      const e = c === 39 && escapeQuote ? "\\'" : escapeOf(c);
      if (e !== undefined) { out += sliceString(s, last, i) + e; last = i + 1; }
    }
    out += sliceString(s, last, i) + (i === n ? q : '');
    budget -= i + 2;
    return out;
  }

  function isIdentifierStart(c) {
    return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 36;
  }

  function isIdentifier(s) {
    const n = s.length;
    if (n === 0 || !isIdentifierStart(charCodeAt(s, 0))) return false;
    for (let i = 1; i < n; i++) {
      const c = charCodeAt(s, i);
      if (!isIdentifierStart(c) && !(c >= 48 && c <= 57)) return false;
    }
    return true;
  }

  // The array index a property key names (a canonical numeral below 2^32 - 1), or -1.
  function arrayIndex(k) {
    if (typeof k !== 'string') return -1;
    const n = k.length;
    if (n === 0 || n > 10 || (n > 1 && charCodeAt(k, 0) === 48)) return -1;
    let v = 0;
    for (let i = 0; i < n; i++) {
      const c = charCodeAt(k, i);
      if (c < 48 || c > 57) return -1;
      v = v * 10 + (c - 48);
    }
    return v < 4294967295 ? v : -1;
  }

  function indentLines(text, pad) {
    let out = pad, last = 0;
    for (let i = indexOfString(text, '\n'); i !== -1; i = indexOfString(text, '\n', i + 1)) {
      out += sliceString(text, last, i + 1) + pad;
      last = i + 1;
    }
    return out + sliceString(text, last);
  }

  function withoutFirstLine(text) {
    const i = indexOfString(text, '\n');
    return i === -1 ? '' : sliceString(text, i + 1);
  }

  function withoutFinalNewline(text) {
    return text.length > 0 && charCodeAt(text, text.length - 1) === 10 ? sliceString(text, 0, -1) : text;
  }

  // ----- the preview (util.inspect's format, depth 2) ----------------------------------------

  function formatNumber(n) {
    return ObjectIs(n, -0) ? '-0' : StringCtor(n);
  }

  function constructorName(v) {
    const p = protoOf(v);
    if (p === null) return null;
    if (mapHas(INTRINSICS, p)) return mapGet(INTRINSICS, p);
    const c = dataValue(getOwnPropertyDescriptor(p, 'constructor'));
    if (typeof c === 'function') {
      const name = dataValue(getOwnPropertyDescriptor(c, 'name'));
      if (typeof name === 'string' && name !== '') return name;
    }
    return 'Object';
  }

  function functionLabel(f) {
    let src = '';
    try { src = fnToString(f); } catch (e) { src = ''; }
    const nameValue = dataValue(getOwnPropertyDescriptor(f, 'name'));
    const name = typeof nameValue === 'string' ? nameValue : '';
    if (sliceString(src, 0, 6) === 'class ' || src === 'class') {
      return name ? '[class ' + name + ']' : '[class (anonymous)]';
    }
    const p = protoOf(f);
    const kind = p === AsyncFunctionPrototype ? 'AsyncFunction'
      : (p === GeneratorFunctionPrototype ? 'GeneratorFunction'
        : (p === AsyncGeneratorFunctionPrototype ? 'AsyncGeneratorFunction' : 'Function'));
    return name ? '[' + kind + ': ' + name + ']' : '[' + kind + ' (anonymous)]';
  }

  function keyLabel(k) {
    if (typeof k === 'symbol') return spend('[' + symbolToString(k) + ']');
    if (k.length > MAX_STRING) return quote(sliceString(k, 0, MAX_STRING)) + spend('... ' + (k.length - MAX_STRING) + ' more characters');
    return isIdentifier(k) ? spend(k) : quote(k);
  }

  function errorText(e) {
    let stack;
    try { stack = e.stack; } catch (x) { stack = undefined; }
    let head;
    try { head = errorToString(e); } catch (x) { head = 'Error'; }
    if (typeof head !== 'string') head = 'Error';
    if (typeof stack === 'string' && stack !== '') {
      // QuickJS's stack holds only the frames; Node prints "Name: message" above them.
      return spend(indexOfString(stack, head) === 0 ? stack : head + '\n' + withoutFinalNewline(stack));
    }
    return spend(head);
  }

  function reduceToSingle(entries, open, close, prefix, indent) {
    let total = prefix.length + open.length + close.length;
    let multiline = false;
    for (let i = 0; i < entries.length; i++) {
      total += entries[i].length + 2;
      if (indexOfString(entries[i], '\n') !== -1) multiline = true;
    }
    if (entries.length === 0) return prefix + open + close;
    if (!multiline && total + indent <= BREAK_LENGTH) {
      return prefix + open + ' ' + join(entries, ', ') + ' ' + close;
    }
    const pad = '\n' + repeat(' ', indent + 2);
    return prefix + open + pad + join(entries, ',' + pad) + '\n' + repeat(' ', indent) + close;
  }

  function emptyItems(n) {
    return spend('<' + n + ' empty item' + (n > 1 ? 's' : '') + '>');
  }

  function moreItems(n) {
    return spend('... ' + n + ' more item' + (n > 1 ? 's' : ''));
  }

  function entryOf(v, k, d, depth, seen, indent) {
    return isAccessor(d) ? spend(accessorLabel(d)) : inspect(d.value, depth + 1, seen, indent + 2, false);
  }

  function arrayEntries(v, entries, depth, seen, indent) {
    const length = v.length;
    const n = typeof length === 'number' ? length : 0;
    let i = 0, items = 0;
    // The dense start, index by index.
    for (; i < n && items < MAX_ITEMS && budget > 0; i++, items++) {
      const d = getOwnPropertyDescriptor(v, i);
      if (d === undefined) break;
      push(entries, entryOf(v, i, d, depth, seen, indent));
    }
    if (i < n && items < MAX_ITEMS && budget > 0) {
      // A hole: the rest is walked through the array's own keys (index keys come first, in
      // order), so a billion holes cost one count, not a billion steps.
      const keys = ReflectOwnKeys(v);
      for (let k = i; k < keys.length && items < MAX_ITEMS && budget > 0; k++) {
        const index = arrayIndex(keys[k]);
        if (index < i || index >= n) break;
        if (index > i) {
          push(entries, emptyItems(index - i));
          i = index;
          if (++items >= MAX_ITEMS) break;
        }
        const d = getOwnPropertyDescriptor(v, keys[k]);
        if (d !== undefined) push(entries, entryOf(v, keys[k], d, depth, seen, indent));
        i++;
        items++;
      }
      if (i < n && items < MAX_ITEMS) { push(entries, emptyItems(n - i)); i = n; }
    }
    if (i < n) push(entries, moreItems(n - i));
    // Non-index properties follow the index keys: find where they start by bisection.
    const keys = ObjectKeys(v);
    let lo = 0, hi = keys.length;
    while (lo < hi) {
      const mid = mathFloor((lo + hi) / 2);
      if (arrayIndex(keys[mid]) !== -1) lo = mid + 1; else hi = mid;
    }
    for (let k = lo; k < keys.length && budget > 0; k++) {
      if (arrayIndex(keys[k]) !== -1) continue;
      const d = getOwnPropertyDescriptor(v, keys[k]);
      if (d !== undefined) push(entries, keyLabel(keys[k]) + ': ' + entryOf(v, keys[k], d, depth, seen, indent));
    }
  }

  function propertyEntries(v, entries, depth, seen, indent) {
    const keys = ObjectKeys(v);
    let symbols = getOwnPropertySymbols(v);
    if (symbols.length > MAX_SYMBOLS) {
      const some = list();
      for (let i = 0; i < MAX_SYMBOLS; i++) push(some, symbols[i]);
      symbols = some;
    }
    let items = 0;
    for (let i = 0; i < keys.length + symbols.length && budget > 0; i++) {
      const k = i < keys.length ? keys[i] : symbols[i - keys.length];
      if (i >= keys.length && !isEnumerable(v, k)) continue;
      if (items++ >= MAX_ITEMS) { push(entries, spend('... ' + (keys.length + symbols.length - i) + ' more properties')); break; }
      const d = getOwnPropertyDescriptor(v, k);
      if (d !== undefined) push(entries, keyLabel(k) + ': ' + entryOf(v, k, d, depth, seen, indent));
    }
  }

  function inspect(v, depth, seen, indent, top) {
    switch (typeof v) {
      case 'string':
        if (v.length > MAX_STRING) {
          const s = sliceString(v, 0, MAX_STRING);
          return (top ? spend(s) : quote(s)) + spend('... ' + (v.length - MAX_STRING) + ' more characters');
        }
        return top ? spend(v) : quote(v);
      case 'number': return spend(formatNumber(v));
      case 'bigint': return spend(bigintToString(v) + 'n');
      case 'boolean': return v ? spend('true') : spend('false');
      case 'undefined': return spend('undefined');
      case 'symbol': return spend(symbolToString(v));
      case 'function': return spend(functionLabel(v));
    }
    if (v === null) return spend('null');
    if (budget <= 0) return '';
    for (let i = 0; i < seen.length; i++) if (seen[i] === v) return spend('[Circular *1]');
    if (isError(v)) return errorText(v);
    const kind = kindOf(v);
    if (kind === 'Date') {
      const t = dateGetTime(v);
      return spend(t !== t ? 'Invalid Date' : dateToISO(v));
    }
    if (kind === 'RegExp') return spend(regexpText(v));
    if (kind === 'Promise') return spend('Promise { <unknown> }');
    if (kind === 'ArrayBuffer') return spend('ArrayBuffer { byteLength: ' + arrayBufferByteLength(v) + ' }');
    const ctor = constructorName(v);
    const nullProto = ctor === null;
    const array = isArray(v);
    if (depth > MAX_DEPTH) {
      if (array) return spend('[Array]');
      return spend('[' + (nullProto ? 'Object: null prototype' : (ctor || 'Object')) + ']');
    }
    const entries = list();
    let open = '{', close = '}', prefix = '';
    push(seen, v);
    try {
      if (array) {
        open = '['; close = ']';
        if (ctor !== 'Array') prefix = spend((nullProto ? '[Array: null prototype]' : ctor) + '(' + formatNumber(+v.length) + ') ');
        arrayEntries(v, entries, depth, seen, indent);
      } else if (typedArrayTag(v) !== undefined) {
        open = '['; close = ']';
        const n = typedArrayLength(v);
        prefix = spend(typedArrayTag(v) + '(' + n + ') ');
        for (let i = 0; i < n && budget > 0; i++) {
          if (i >= MAX_ITEMS) { push(entries, moreItems(n - i)); break; }
          push(entries, inspect(v[i], depth + 1, seen, indent + 2, false));
        }
        return reduceToSingle(entries, open, close, prefix, indent);
      } else if (kind === 'Map') {
        const size = mapSize(v);
        prefix = spend('Map(' + size + ') ');
        const it = mapEntries(v);
        let items = 0;
        for (let r = mapIterNext(it); !r.done && budget > 0; r = mapIterNext(it)) {
          if (items++ >= MAX_ITEMS) { push(entries, moreItems(size - MAX_ITEMS)); break; }
          const key = inspect(r.value[0], depth + 1, seen, indent + 2, false);
          push(entries, key + spend(' => ') + inspect(r.value[1], depth + 1, seen, indent + 2, false));
        }
        if (entries.length === 0) return prefix + '{}';
      } else if (kind === 'Set') {
        const size = setSize(v);
        prefix = spend('Set(' + size + ') ');
        const it = setValues(v);
        let items = 0;
        for (let r = setIterNext(it); !r.done && budget > 0; r = setIterNext(it)) {
          if (items++ >= MAX_ITEMS) { push(entries, moreItems(size - MAX_ITEMS)); break; }
          push(entries, inspect(r.value, depth + 1, seen, indent + 2, false));
        }
        if (entries.length === 0) return prefix + '{}';
      } else {
        if (nullProto) prefix = spend('[Object: null prototype] ');
        else if (ctor !== 'Object') prefix = spend(ctor + ' ');
        else {
          const tag = tagOf(v);
          if (tag !== '' && tag !== 'Object') prefix = spend('Object [' + tag + '] ');
        }
        propertyEntries(v, entries, depth, seen, indent);
      }
    } finally {
      seen.length = seen.length - 1;
    }
    return reduceToSingle(entries, open, close, prefix, indent);
  }

  // A rendering with its own budget: `limit` characters are kept, a little more is produced.
  function render(v, top, limit) {
    const outer = budget;
    budget = limit + RENDER_MARGIN;
    try {
      return inspect(v, 0, list(), 0, top);
    } finally {
      budget = outer;
    }
  }

  // ----- the JSON of a value -----------------------------------------------------------------
  // What JSON.stringify gives with the built-ins as they were at start-up: a toJSON of the
  // script's own (on the value or one of its classes) is called, one planted on a built-in
  // prototype is not; getters and proxy traps of the value run as JSON.stringify runs them.
  // It stops as soon as the text is too long or too deep, and says why there is none.

  let jsonText = '';
  let jsonWhy = '';
  let jsonValues = 0;
  function jsonCount(n) {
    jsonValues += n;
    if (jsonValues <= JSON_MAX_VALUES) return true;
    jsonFail('it has more than ' + JSON_MAX_VALUES + ' values');
    return false;
  }
  const jsonStack = list();
  const SKIP = freeze({ __proto__: null });
  const FAIL = freeze({ __proto__: null });

  function jsonFail(why) {
    if (jsonWhy === '') jsonWhy = why;
    return FAIL;
  }

  // The value JSON.stringify would serialise for `v` under `key`: SKIP for nothing
  // (undefined, functions, symbols), FAIL with jsonWhy set, or a primitive or object.
  function jsonPrepare(v, key) {
    if (typeof v === 'bigint') return jsonFail('it contains a BigInt');
    if (v === null || (typeof v !== 'object' && typeof v !== 'function')) {
      return v === undefined || typeof v === 'symbol' ? SKIP : v;
    }
    const toJSON = scriptProperty(v, 'toJSON');
    if (typeof toJSON === 'function') {
      v = ReflectApply(toJSON, v, [typeof key === 'string' ? key : StringCtor(key)]);
      if (typeof v === 'bigint') return jsonFail('it contains a BigInt');
      if (v === null || (typeof v !== 'object' && typeof v !== 'function')) {
        return v === undefined || typeof v === 'symbol' ? SKIP : v;
      }
    } else if (typeof v !== 'function') {
      switch (kindOf(v)) {
        case 'Date': { const t = dateGetTime(v); return t !== t ? null : dateToISO(v); }
        case 'Number': return numberValueOf(v);
        case 'String': return stringValueOf(v);
        case 'Boolean': return booleanValueOf(v);
        case 'BigInt': return jsonFail('it contains a BigInt');
      }
    }
    return typeof v === 'function' ? SKIP : v;
  }

  function jsonAppend(s) {
    jsonText += s;
    if (jsonText.length <= JSON_LIMIT) return true;
    jsonFail('its JSON is longer than ' + JSON_LIMIT + ' characters');
    return false;
  }

  // The JSON text of a primitive that has one (the common case, kept cheap), else undefined.
  function leafText(x) {
    switch (typeof x) {
      case 'string': return stringify(x);
      case 'number': return x === x && x !== Infinity && x !== -Infinity ? '' + x : 'null';
      case 'boolean': return x ? 'true' : 'false';
      case 'object': return x === null ? 'null' : undefined;
      default: return undefined;
    }
  }

  // Writes a prepared value; false once it failed.
  function jsonWrite(v, depth) {
    const leaf = leafText(v);
    if (leaf !== undefined) return jsonAppend(leaf);
    if (depth >= JSON_MAX_DEPTH) return !jsonFail('it is nested deeper than ' + JSON_MAX_DEPTH + ' levels');
    for (let i = 0; i < jsonStack.length; i++) if (jsonStack[i] === v) return !jsonFail('it is circular');
    push(jsonStack, v);
    try {
      if (isArray(v)) {
        const length = v.length;
        const n = typeof length === 'number' ? length : 0;
        // Every element takes at least one character and a comma.
        if (jsonText.length + 2 * n + 1 > JSON_LIMIT) return !jsonFail('its JSON is longer than ' + JSON_LIMIT + ' characters');
        if (!jsonCount(n)) return false;
        if (!jsonAppend('[')) return false;
        for (let i = 0; i < n; i++) {
          const x = hasOwn(v, i) ? v[i] : undefined;
          const leaf = leafText(x);
          if (leaf !== undefined) {
            if (!jsonAppend(i > 0 ? ',' + leaf : leaf)) return false;
            continue;
          }
          if (i > 0 && !jsonAppend(',')) return false;
          const e = jsonPrepare(x, i);
          if (e === FAIL) return false;
          if (!(e === SKIP ? jsonAppend('null') : jsonWrite(e, depth + 1))) return false;
        }
        return jsonAppend(']');
      }
      const keys = ObjectKeys(v);
      if (!jsonCount(keys.length) || !jsonAppend('{')) return false;
      let first = true;
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i];
        const x = v[k];
        const leaf = leafText(x);
        if (leaf !== undefined) {
          if (!jsonAppend((first ? '' : ',') + stringify(k) + ':' + leaf)) return false;
          first = false;
          continue;
        }
        const e = jsonPrepare(x, k);
        if (e === FAIL) return false;
        if (e === SKIP) continue;
        if (!jsonAppend((first ? '' : ',') + stringify(k) + ':') || !jsonWrite(e, depth + 1)) return false;
        first = false;
      }
      return jsonAppend('}');
    } finally {
      jsonStack.length = jsonStack.length - 1;
    }
  }

  // Why a value has no JSON text, when one of the engine's limits is the reason; other
  // failures (circular, a BigInt, a throwing toJSON) are JSON.stringify's own: no JSON form.
  function isLimitReason(why) {
    return indexOfString(why, 'its JSON is longer') === 0 || indexOfString(why, 'it is nested deeper') === 0 ||
      indexOfString(why, 'it has more than') === 0;
  }

  // [text, undefined] | [undefined, why] (why: the reason, '' when unknown).
  function toJSONText(v) {
    jsonText = '';
    jsonWhy = '';
    jsonValues = 0;
    jsonStack.length = 0;
    let text, why;
    try {
      const e = jsonPrepare(v, '');
      if (e !== SKIP && e !== FAIL && jsonWrite(e, 0)) text = jsonText;
    } catch (x) {
      jsonFail('a toJSON method, getter or proxy trap of it threw');
    }
    if (text === undefined) why = jsonWhy;
    jsonText = '';
    jsonStack.length = 0;
    return [text, why];
  }

  // ----- console -----------------------------------------------------------------------------

  function formatWithOptions(args) {
    let out = '';
    let i = 0;
    if (typeof args[0] === 'string' && args.length > 1 && indexOfString(args[0], '%') !== -1) {
      const f = args[0];
      i = 1;
      let last = 0;
      for (let p = 0; p < f.length - 1; p++) {
        if (charCodeAt(f, p) !== 37) continue; // '%'
        const c = f[p + 1];
        let piece;
        if (c === '%') { out += sliceString(f, last, p) + '%'; last = p + 2; p++; continue; }
        if (i >= args.length) continue;
        const a = args[i];
        switch (c) {
          case 's': piece = typeof a === 'string' ? a : (typeof a === 'bigint' ? bigintToString(a) + 'n' : (typeof a === 'object' && a !== null ? inspect(a, 1, list(), 0, false) : inspect(a, 0, list(), 0, true))); break;
          case 'd': case 'i': {
            if (typeof a === 'bigint') piece = bigintToString(a) + 'n';
            else if (typeof a === 'symbol') piece = 'NaN';
            else { const n = +a; piece = formatNumber(c === 'i' ? (n < 0 ? -mathFloor(-n) : mathFloor(n)) : n); }
            break;
          }
          case 'f': piece = typeof a === 'symbol' ? 'NaN' : formatNumber(+a); break;
          case 'j': {
            const r = toJSONText(a);
            piece = r[0] !== undefined ? r[0]
              : (r[1] === '' ? 'undefined' : (r[1] === 'it is circular' ? '[Circular]' : '[no JSON: ' + r[1] + ']'));
            break;
          }
          case 'o': case 'O': piece = inspect(a, 0, list(), 0, false); break;
          case 'c': piece = ''; break;
          default: continue;
        }
        out += sliceString(f, last, p) + piece;
        last = p + 2;
        p++;
        i++;
      }
      out += sliceString(f, last);
      if (i < args.length) out += ' ';
    }
    for (let first = true; i < args.length && budget > 0; i++, first = false) {
      out += (first ? '' : ' ') + inspect(args[i], 0, list(), 0, true);
    }
    return out;
  }

  function consoleText(args) {
    const outer = budget;
    budget = CONSOLE_TEXT_LIMIT + RENDER_MARGIN;
    try {
      const text = formatWithOptions(args);
      return text.length > CONSOLE_TEXT_LIMIT ? sliceString(text, 0, CONSOLE_TEXT_LIMIT) + '…' : text;
    } finally {
      budget = outer;
    }
  }

  // Levels are numbered on the way out; the host maps them back to names.
  const LEVELS = ['log', 'info', 'warn', 'error', 'debug'];
  const counts = new Map();
  const timers = new Map();
  let groupIndent = '';
  function emit(level, text) {
    if (groupIndent !== '') text = indentLines(text, groupIndent);
    hostConsole(level, text);
  }
  function traceText() {
    let stack;
    try { stack = new ErrorCtor().stack; } catch (e) { stack = undefined; }
    return typeof stack === 'string' ? withoutFirstLine(stack) : '';
  }
  const consoleObject = {};
  for (let i = 0; i < LEVELS.length; i++) {
    const level = i;
    defineProperty(consoleObject, LEVELS[i], {
      value: { [LEVELS[i]](...args) { emit(level, consoleText(args)); } }[LEVELS[i]],
      writable: true, enumerable: true, configurable: true,
    });
  }
  const extras = {
    trace(...args) { emit(3, 'Trace' + (args.length ? ': ' + consoleText(args) : '') + '\n' + traceText()); },
    dir(v) { emit(0, render(v, false, CONSOLE_TEXT_LIMIT)); },
    table(...args) { emit(0, consoleText(args)); },
    assert(ok, ...args) { if (!ok) emit(3, 'Assertion failed' + (args.length ? ': ' + consoleText(args) : '')); },
    count(label = 'default') { const n = (mapGet(counts, label) || 0) + 1; mapSet(counts, label, n); emit(0, label + ': ' + n); },
    countReset(label = 'default') { mapDelete(counts, label); },
    time(label = 'default') { mapSet(timers, label, dateNow()); },
    timeLog(label = 'default', ...args) { if (mapHas(timers, label)) emit(0, label + ': ' + (dateNow() - mapGet(timers, label)) + 'ms' + (args.length ? ' ' + consoleText(args) : '')); },
    timeEnd(label = 'default') { if (mapHas(timers, label)) { emit(0, label + ': ' + (dateNow() - mapGet(timers, label)) + 'ms'); mapDelete(timers, label); } },
    group(...args) { if (args.length) emit(0, consoleText(args)); groupIndent += '  '; },
    groupEnd() { groupIndent = sliceString(groupIndent, 2); },
  };
  extras.groupCollapsed = extras.group;
  const extraNames = ObjectKeys(extras);
  for (let i = 0; i < extraNames.length; i++) {
    defineProperty(consoleObject, extraNames[i], { value: extras[extraNames[i]], writable: true, enumerable: true, configurable: true });
  }
  defineProperty(G, 'console', { value: consoleObject, writable: true, enumerable: false, configurable: true });
  defineProperty(G, 'print', { value: consoleObject.log, writable: true, enumerable: false, configurable: true });

  // ----- the host's helpers ------------------------------------------------------------------

  function typeName(v) {
    if (v === null) return 'null';
    const t = typeof v;
    if (t !== 'object') return t;
    if (isArray(v)) return 'array';
    if (isError(v)) return 'error';
    switch (kindOf(v)) {
      case 'Date': return 'date';
      case 'RegExp': return 'regexp';
      case 'Map': return 'map';
      case 'Set': return 'set';
      case 'Promise': return 'promise';
      default: return 'object';
    }
  }

  function cleanPreview(s) {
    // Cut first: a 5 MiB message must not cost a 5 MiB scan. Lone surrogates cannot be
    // encoded as UTF-8: the preview is for people, so they become U+FFFD.
    const cut = s.length > PREVIEW_LIMIT;
    if (cut) s = sliceString(s, 0, PREVIEW_LIMIT);
    s = toWellFormed(s);
    return cut ? s + '…' : s;
  }

  function describe(v, promiseState) {
    if (typeof v === 'number' && promiseState === undefined) {
      const p = formatNumber(v);
      const exact = v === v && v !== Infinity && v !== -Infinity && p !== '-0';
      return '{"type":"number","preview":"' + p + '"' + (exact ? ',"json":' + p : '') + '}';
    }
    let type, preview, json, why;
    try {
      type = typeName(v);
      preview = cleanPreview(render(v, false, PREVIEW_LIMIT));
    } catch (e) {
      if (type === undefined) type = 'object';
      preview = '[uninspectable ' + type + ']';
    }
    if (promiseState !== undefined) {
      type = 'promise';
      preview = 'Promise { ' + (promiseState === 0 ? '<pending>' : preview) + ' }';
    } else if (typeof v === 'string') {
      if (v.length + 2 <= JSON_LIMIT) json = stringify(v);
      else why = 'its JSON is longer than ' + JSON_LIMIT + ' characters';
    } else if (typeof v === 'object' || typeof v === 'boolean') {
      const r = toJSONText(v);
      json = r[0];
      if (json === undefined && isLimitReason(r[1])) why = r[1];
    }
    return '{"type":' + stringify(type) + ',"preview":' + stringify(preview) +
      (json === undefined ? '' : ',"json":' + json) +
      (why === undefined ? '' : ',"json_omitted":' + stringify(why)) + '}';
  }

  function describeError(e) {
    let name, message, stack;
    try {
      if (e !== null && (typeof e === 'object' || typeof e === 'function') && isError(e)) {
        const n = e.name, m = e.message, s = e.stack;
        name = typeof n === 'string' ? n : 'Error';
        message = typeof m === 'string' ? m : render(m, true, PREVIEW_LIMIT);
        stack = typeof s === 'string' && s !== '' ? s : undefined;
      } else {
        name = 'Uncaught';
        message = render(e, false, PREVIEW_LIMIT);
      }
    } catch (x) {
      name = 'Uncaught';
      message = '[uninspectable thrown value]';
    }
    return '{"name":' + stringify(cleanPreview(name)) + ',"message":' + stringify(cleanPreview(message)) +
      (stack === undefined ? '' : ',"stack":' + stringify(cleanPreview(stack))) + '}';
  }

  function callGlobal(name, argsJson) {
    const f = G[name];
    if (typeof f !== 'function') throw new TypeErrorCtor(name + ' is not a function');
    return ReflectApply(f, undefined, parseJSON(argsJson));
  }

  function defineFrozenGlobal(name, json) {
    const value = deepFreeze(parseJSON(json));
    // Configurable, so the host can replace it for the next execution; the value itself is
    // frozen and the property read-only, so a script cannot change what it was given.
    defineProperty(G, name, { __proto__: null, value, writable: false, enumerable: false, configurable: true });
  }

  function deepFreeze(v) {
    if (v !== null && typeof v === 'object') {
      const keys = ObjectKeys(v);
      for (let i = 0; i < keys.length; i++) deepFreeze(dataValue(getOwnPropertyDescriptor(v, keys[i])));
      freeze(v);
    }
    return v;
  }

  // ----- host functions, timers and microtasks ------------------------------------------------
  //
  // `hostBridge(op, a, b, c)` is the host's only entry point; it checks everything it is given
  // (a slot that names no function it offers is refused there, whatever the script did to
  // `host`). A host call's answer is undefined, a boolean or a small integer as it is, or text
  // whose first letter says what the rest is (host_bridge.py, HostBridge.bridge). The guest
  // keeps the callbacks: timers by id, and the resolvers of pending host calls by id; the host
  // keeps the schedule and the budgets, and drives `turn` between evaluations of the loop.
  const OP_CALL = 1, OP_TIMER = 2, OP_CLEAR = 3;
  const TURN_RESOLVE = 0, TURN_REJECT = 1, TURN_FIRE = 2, TURN_EXPOSE = 3, TURN_RESET = 4;
  const MAX_DELAY = 2147483647;
  const PromiseCtor = Promise;
  const promiseThen = uncurry(Promise.prototype.then);
  const resolvedPromise = Promise.resolve();
  const mapClear = uncurry(Map.prototype.clear);
  const timerCallbacks = new Map();  // id -> [callback, args, repeats]
  const pendingCalls = new Map();  // id -> [resolve, reject]
  let callIds = 0;  // the guest numbers its host calls: an async one is settled by its number
  class HostError extends ErrorCtor {}
  defineProperty(HostError.prototype, 'name', { value: 'HostError', writable: true, enumerable: false, configurable: true });
  const hostObject = { __proto__: null };
  // Each name's slot, what its function passes the host: numbered here, so that a function
  // kept in an image or across a rollback keeps its number (the host learns them on exposing).
  const slotOf = new Map();
  let slots = 0;  // not slotOf.size: the script may redefine Map.prototype's getters
  let hostDefined = false;

  function hostFunction(name, slot) {
    return { [name](...args) {
      // Still an array to JSON.stringify, but with no prototype: a toJSON planted on
      // Array.prototype or Object.prototype cannot stand in for the whole argument list.
      setPrototypeOf(args, null);
      const id = callIds = callIds >= 0x3FFFFFFF ? 1 : callIds + 1;
      const reply = hostBridge(OP_CALL, slot, stringify(args), id);
      if (reply === null) return new PromiseCtor((resolve, reject) => { mapSet(pendingCalls, id, [resolve, reject]); });
      if (typeof reply !== 'string') return reply;  // undefined, a boolean or a small integer
      const kind = sliceString(reply, 0, 1), rest = sliceString(reply, 1);
      if (kind === 'v') return parseJSON(rest);
      if (kind === 'n') throw new HostError("no host function '" + name + "' is offered");
      throw new HostError(rest);
    } }[name];
  }

  function addTimer(callback, delay, args, repeats) {
    if (typeof callback !== 'function') throw new TypeErrorCtor('The "callback" argument must be of type function');
    let ms = +delay;
    if (!(ms >= 0)) ms = 0;  // NaN, negative, undefined
    else if (ms > MAX_DELAY) ms = 1;  // as Node does with a delay that does not fit 32 bits
    ms = ms | 0;
    const id = hostBridge(OP_TIMER, ms, repeats ? 1 : 0);
    if (id === 0) throw new RangeErrorCtor('too many pending timers');
    mapSet(timerCallbacks, id, [callback, args, repeats]);
    return id;
  }
  function clearTimer(id) {
    if (typeof id === 'number' && mapDelete(timerCallbacks, id)) hostBridge(OP_CLEAR, id, 0);
  }
  const timerGlobals = {
    setTimeout(callback, delay, ...args) { return addTimer(callback, delay, args, false); },
    setInterval(callback, delay, ...args) { return addTimer(callback, delay, args, true); },
    clearTimeout(id) { clearTimer(id); },
    clearInterval(id) { clearTimer(id); },
    queueMicrotask(callback) {
      if (typeof callback !== 'function') throw new TypeErrorCtor('The "callback" argument must be of type function');
      promiseThen(resolvedPromise, () => { callback(); });
    },
  };
  const timerNames = ObjectKeys(timerGlobals);
  for (let i = 0; i < timerNames.length; i++) {
    defineProperty(G, timerNames[i], { value: timerGlobals[timerNames[i]], writable: true, enumerable: false, configurable: true });
  }

  function turn(kind, id, text) {
    if (kind === TURN_FIRE) {
      const t = mapGet(timerCallbacks, id);
      if (t === undefined) return;
      if (!t[2]) mapDelete(timerCallbacks, id);
      ReflectApply(t[0], undefined, t[1]);
    } else if (kind === TURN_RESOLVE || kind === TURN_REJECT) {
      const r = mapGet(pendingCalls, id);
      if (r === undefined) return;
      mapDelete(pendingCalls, id);
      if (kind === TURN_REJECT) r[1](new HostError(text));
      else r[0](typeof text === 'string' ? parseJSON(text) : text);  // or a value as it is
    } else if (kind === TURN_EXPOSE) {
      if (!hostDefined) {
        defineProperty(G, 'host', { value: hostObject, writable: true, enumerable: false, configurable: true });
        hostDefined = true;
      }
      let slot = mapGet(slotOf, text);
      if (slot === undefined) {
        slot = slots++;
        mapSet(slotOf, text, slot);
      }
      defineProperty(hostObject, text, { value: hostFunction(text, slot), writable: false, enumerable: true, configurable: true });
      return slot;
    } else if (kind === TURN_RESET) {
      mapClear(timerCallbacks);
      mapClear(pendingCalls);
    }
  }

  // ----- Error.prepareStackTrace -----------------------------------------------------------
  //
  // QuickJS-NG has V8's stack trace API, and its CallSite.getFunction() hands a script the
  // function of every frame, the bootstrap's own closures among them (a host function's
  // wrapper, `turn`: with it a script could settle its host calls with values the host never
  // gave). The script's prepareStackTrace is kept here and given frames that answer all the
  // CallSite questions but that one (undefined, as V8 answers for strict-mode frames).
  {
    const desc = getOwnPropertyDescriptor(ErrorCtor, 'prepareStackTrace');
    if (desc !== undefined && typeof desc.set === 'function') {
      const nativeSet = desc.set;
      const weakGet = uncurry(WeakMap.prototype.get), weakSet = uncurry(WeakMap.prototype.set);
      const siteOf = new WeakMap();
      ReflectApply(nativeSet, ErrorCtor, [(e, sites) => sites]);
      const probe = new ErrorCtor('probe').stack;
      ReflectApply(nativeSet, ErrorCtor, [undefined]);
      const siteProto = getPrototypeOf(probe[0]);
      const safeProto = { __proto__: null };
      const names = ReflectOwnKeys(siteProto);
      for (let i = 0; i < names.length; i++) {
        const key = names[i];
        const d = getOwnPropertyDescriptor(siteProto, key);
        if (key === 'constructor' || typeof d.value !== 'function') {
          defineProperty(safeProto, key, d);
          continue;
        }
        const method = d.value;
        const safe = key === 'getFunction' ? { getFunction() { return undefined; } }.getFunction
          : { [key]() { const site = weakGet(siteOf, this); return site === undefined ? undefined : ReflectApply(method, site, []); } }[key];
        defineProperty(safeProto, key, { value: safe, writable: true, enumerable: false, configurable: true });
      }
      let scriptPrepare;
      const prepare = (error, sites) => {
        const safeSites = [];
        for (let i = 0; i < sites.length; i++) {
          const site = { __proto__: safeProto };
          weakSet(siteOf, site, sites[i]);
          defineProperty(safeSites, i, { value: site, writable: true, enumerable: true, configurable: true });
        }
        return ReflectApply(scriptPrepare, ErrorCtor, [error, safeSites]);
      };
      defineProperty(ErrorCtor, 'prepareStackTrace', {
        get: { prepareStackTrace() { return scriptPrepare; } }.prepareStackTrace,
        set: { prepareStackTrace(f) {
          scriptPrepare = f;
          ReflectApply(nativeSet, ErrorCtor, [typeof f === 'function' ? prepare : f]);
        } }.prepareStackTrace,
        // Configurable, as the engine's own accessor is: the engine reads the function its
        // setter was last given, so redefining the property only detaches it.
        enumerable: false, configurable: true,
      });
    }
  }

  // Host leftovers some QuickJS builds install; the guest must not see them.
  const leftovers = ['scriptArgs', 'gc', 'std', 'os', 'bjson', '__loadScript', 'navigator'];
  for (let i = 0; i < leftovers.length; i++) {
    if (hasOwn(G, leftovers[i])) delete G[leftovers[i]];
  }

  return freeze([describe, describeError, callGlobal, defineFrozenGlobal, turn]);
})
