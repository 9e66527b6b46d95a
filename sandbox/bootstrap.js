// The guest-side half of the engine, evaluated once when a sandbox is created (and therefore
// part of every image). It installs `console` and `print`, and returns the host's private
// helpers: how a value or an error is described when it leaves the guest, and how a global
// function is called with JSON arguments.
//
// Everything a helper needs is captured here, before any user code runs, so a script that
// replaces JSON.stringify, Array.prototype.join or Object.keys changes nothing the host sees.
// The host still treats what these helpers return as untrusted data and validates it.
(function bootstrap(hostConsole) {
  'use strict';
  const G = globalThis;
  const uncurry = Function.prototype.bind.bind(Function.prototype.call);
  const stringify = JSON.stringify;
  const parseJSON = JSON.parse;
  const ObjectKeys = Object.keys;
  const ReflectOwnKeys = Reflect.ownKeys;
  const ReflectApply = Reflect.apply;
  const getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
  const getPrototypeOf = Object.getPrototypeOf;
  const setPrototypeOf = Object.setPrototypeOf;
  const defineProperty = Object.defineProperty;
  const freeze = Object.freeze;
  const isArray = Array.isArray;
  const ObjectIs = Object.is;
  const StringCtor = String;
  const NumberIsInteger = Number.isInteger;
  const ObjectProto = Object.prototype;
  const toTag = uncurry(Object.prototype.toString);
  const hasOwn = uncurry(Object.prototype.hasOwnProperty);
  const isEnumerable = uncurry(Object.prototype.propertyIsEnumerable);
  const join = uncurry(Array.prototype.join);
  const sliceString = uncurry(String.prototype.slice);
  const replaceString = uncurry(String.prototype.replace);
  const indexOfString = uncurry(String.prototype.indexOf);
  const charCodeAt = uncurry(String.prototype.charCodeAt);
  const fnToString = uncurry(Function.prototype.toString);
  const symbolToString = uncurry(Symbol.prototype.toString);
  const symbolDescription = uncurry(getOwnPropertyDescriptor(Symbol.prototype, 'description').get);
  const bigintToString = uncurry(BigInt.prototype.toString);
  const dateToISO = uncurry(Date.prototype.toISOString);
  const dateGetTime = uncurry(Date.prototype.getTime);
  const regexpToString = uncurry(RegExp.prototype.toString);
  const errorToString = uncurry(Error.prototype.toString);
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
  const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
  const regexpTest = uncurry(RegExp.prototype.test);
  const repeat = uncurry(String.prototype.repeat);
  const numberToString = uncurry(Number.prototype.toString);
  const mathFloor = Math.floor;
  const mapGet = uncurry(Map.prototype.get);
  const mapSet = uncurry(Map.prototype.set);
  const mapHas = uncurry(Map.prototype.has);
  const mapDelete = uncurry(Map.prototype.delete);
  const ErrorPrototype = Error.prototype;

  const MAX_DEPTH = 2;
  const MAX_ITEMS = 100;
  const MAX_STRING = 10000;
  const BREAK_LENGTH = 80;
  const PREVIEW_LIMIT = 4096;
  const JSON_LIMIT = 1 << 20;

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
  function accessorLabel(d) {
    const g = hasOwn(d, 'get') && d.get !== undefined, s = hasOwn(d, 'set') && d.set !== undefined;
    return g && s ? '[Getter/Setter]' : (g ? '[Getter]' : '[Setter]');
  }

  function tagOf(v) {
    try { return sliceString(toTag(v), 8, -1); } catch (e) { return 'Object'; }
  }

  function isError(v) {
    let p = v;
    for (let i = 0; p !== null && i < 100; i++) {
      if (p === ErrorPrototype) return true;
      p = getPrototypeOf(p);
    }
    return tagOf(v) === 'Error';
  }

  function quote(s) {
    let q = "'";
    if (indexOfString(s, "'") !== -1) q = indexOfString(s, '"') === -1 ? '"' : (indexOfString(s, '`') === -1 ? '`' : "'");
    let body = replaceString(s, /[\\\n\r\t\b\f\v\x00-\x1f\x7f]/g, (c) => {
      switch (c) {
        case '\\': return '\\\\';
        case '\n': return '\\n';
        case '\r': return '\\r';
        case '\t': return '\\t';
        case '\b': return '\\b';
        case '\f': return '\\f';
        case '\v': return '\\v';
        default: return '\\x' + (charCodeAt(c, 0) < 16 ? '0' : '') + numberToString(charCodeAt(c, 0), 16);
      }
    });
    if (q === "'" && indexOfString(body, "'") !== -1) body = replaceString(body, /'/g, "\\'");
    return q + body + q;
  }

  function formatNumber(n) {
    return ObjectIs(n, -0) ? '-0' : StringCtor(n);
  }

  function constructorName(v) {
    let p;
    try { p = getPrototypeOf(v); } catch (e) { return 'Object'; }
    if (p === null) return null;
    const d = getOwnPropertyDescriptor(p, 'constructor');
    if (d && typeof d.value === 'function') {
      const nd = getOwnPropertyDescriptor(d.value, 'name');
      if (nd && typeof nd.value === 'string' && nd.value !== '') return nd.value;
    }
    return 'Object';
  }

  function functionLabel(f) {
    let src = '';
    try { src = fnToString(f); } catch (e) { src = ''; }
    const nd = getOwnPropertyDescriptor(f, 'name');
    const name = nd && typeof nd.value === 'string' ? nd.value : '';
    if (sliceString(src, 0, 6) === 'class ' || src === 'class') {
      return name ? '[class ' + name + ']' : '[class (anonymous)]';
    }
    const kind = tagOf(f) === 'AsyncFunction' ? 'AsyncFunction' : (tagOf(f) === 'GeneratorFunction' ? 'GeneratorFunction' : 'Function');
    return name ? '[' + kind + ': ' + name + ']' : '[' + kind + ' (anonymous)]';
  }

  function keyLabel(k) {
    if (typeof k === 'symbol') return '[' + symbolToString(k) + ']';
    return regexpTest(IDENT, k) ? k : quote(k);
  }

  function errorText(e) {
    let stack;
    try { stack = e.stack; } catch (x) { stack = undefined; }
    let head;
    try { head = errorToString(e); } catch (x) { head = 'Error'; }
    if (typeof stack === 'string' && stack !== '') {
      // QuickJS's stack holds only the frames; Node prints "Name: message" above them.
      return indexOfString(stack, head) === 0 ? stack : head + '\n' + replaceString(stack, /\n$/, '');
    }
    return head;
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

  function inspect(v, depth, seen, indent, top) {
    switch (typeof v) {
      case 'string':
        if (v.length > MAX_STRING) {
          const s = sliceString(v, 0, MAX_STRING);
          return (top ? s : quote(s)) + '... ' + (v.length - MAX_STRING) + ' more characters';
        }
        return top ? v : quote(v);
      case 'number': return formatNumber(v);
      case 'bigint': return bigintToString(v) + 'n';
      case 'boolean': return v ? 'true' : 'false';
      case 'undefined': return 'undefined';
      case 'symbol': return symbolToString(v);
      case 'function': {
        const label = functionLabel(v);
        return label;
      }
    }
    if (v === null) return 'null';
    for (let i = 0; i < seen.length; i++) if (seen[i] === v) return '[Circular *1]';
    const tag = tagOf(v);
    if (isError(v)) return errorText(v);
    if (tag === 'Date') {
      const t = dateGetTime(v);
      return t !== t ? 'Invalid Date' : dateToISO(v);
    }
    if (tag === 'RegExp') return regexpToString(v);
    if (tag === 'Promise') return 'Promise { <unknown> }';
    if (tag === 'ArrayBuffer') return 'ArrayBuffer { byteLength: ' + arrayBufferByteLength(v) + ' }';
    const ctor = constructorName(v);
    const nullProto = ctor === null;
    const entries = list();
    let open = '{', close = '}', prefix = '';
    let items = 0;
    if (depth > MAX_DEPTH) {
      if (isArray(v)) return '[Array]';
      return '[' + (nullProto ? 'Object: null prototype' : (ctor || 'Object')) + ']';
    }
    push(seen, v);
    try {
      if (isArray(v)) {
        open = '['; close = ']';
        if (ctor !== 'Array') prefix = (nullProto ? '[Array: null prototype]' : ctor) + '(' + v.length + ') ';
        const n = v.length;
        let holes = 0;
        for (let i = 0; i < n; i++) {
          if (items >= MAX_ITEMS) { push(entries, '... ' + (n - i) + ' more item' + (n - i > 1 ? 's' : '')); break; }
          const d = getOwnPropertyDescriptor(v, i);
          if (d === undefined) { holes++; continue; }
          if (holes) { push(entries, '<' + holes + ' empty item' + (holes > 1 ? 's' : '') + '>'); holes = 0; items++; }
          push(entries, isAccessor(d) ? accessorLabel(d) : inspect(d.value, depth + 1, seen, indent + 2, false));
          items++;
        }
        if (holes) push(entries, '<' + holes + ' empty item' + (holes > 1 ? 's' : '') + '>');
      } else if (typedArrayTag(v) !== undefined) {
        open = '['; close = ']';
        const n = typedArrayLength(v);
        prefix = typedArrayTag(v) + '(' + n + ') ';
        for (let i = 0; i < n; i++) {
          if (i >= MAX_ITEMS) { push(entries, '... ' + (n - i) + ' more item' + (n - i > 1 ? 's' : '')); break; }
          push(entries, inspect(v[i], depth + 1, seen, indent + 2, false));
        }
        return reduceToSingle(entries, open, close, prefix, indent);
      } else if (tag === 'Map') {
        prefix = 'Map(' + mapSize(v) + ') ';
        const it = mapEntries(v);
        for (let r = mapIterNext(it); !r.done; r = mapIterNext(it)) {
          if (items++ >= MAX_ITEMS) { push(entries, '... more items'); break; }
          push(entries, inspect(r.value[0], depth + 1, seen, indent + 2, false) + ' => ' + inspect(r.value[1], depth + 1, seen, indent + 2, false));
        }
      } else if (tag === 'Set') {
        prefix = 'Set(' + setSize(v) + ') ';
        const it = setValues(v);
        for (let r = setIterNext(it); !r.done; r = setIterNext(it)) {
          if (items++ >= MAX_ITEMS) { push(entries, '... more items'); break; }
          push(entries, inspect(r.value, depth + 1, seen, indent + 2, false));
        }
      } else if (nullProto) {
        prefix = '[Object: null prototype] ';
      } else if (ctor !== 'Object') {
        prefix = ctor + ' ';
      } else if (tag !== 'Object') {
        prefix = 'Object [' + tag + '] ';
      }
      if (!(tag === 'Map' || tag === 'Set' || isArray(v))) {
        const keys = ReflectOwnKeys(v);
        for (let i = 0; i < keys.length; i++) {
          const k = keys[i];
          if (!isEnumerable(v, k)) continue;
          if (items++ >= MAX_ITEMS) { push(entries, '... ' + (keys.length - i) + ' more properties'); break; }
          const d = getOwnPropertyDescriptor(v, k);
          push(entries, keyLabel(k) + ': ' + (isAccessor(d) ? accessorLabel(d) : inspect(d.value, depth + 1, seen, indent + 2, false)));
        }
      } else if (isArray(v)) {
        const keys = ObjectKeys(v);
        for (let i = 0; i < keys.length; i++) {
          const k = keys[i];
          if (regexpTest(/^(0|[1-9][0-9]*)$/, k)) continue;
          const d = getOwnPropertyDescriptor(v, k);
          push(entries, keyLabel(k) + ': ' + (isAccessor(d) ? accessorLabel(d) : inspect(d.value, depth + 1, seen, indent + 2, false)));
        }
      }
    } finally {
      seen.length = seen.length - 1;
    }
    if (entries.length === 0 && prefix !== '' && (tag === 'Map' || tag === 'Set')) return prefix + '{}';
    return reduceToSingle(entries, open, close, prefix, indent);
  }

  function show(v, top) {
    return inspect(v, 0, list(), 0, top);
  }

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
          case 's': piece = typeof a === 'string' ? a : (typeof a === 'bigint' ? bigintToString(a) + 'n' : (typeof a === 'object' && a !== null ? inspect(a, 1, list(), 0, false) : show(a, true))); break;
          case 'd': case 'i': {
            if (typeof a === 'bigint') piece = bigintToString(a) + 'n';
            else if (typeof a === 'symbol') piece = 'NaN';
            else { const n = +a; piece = formatNumber(c === 'i' ? (n < 0 ? -mathFloor(-n) : mathFloor(n)) : n); }
            break;
          }
          case 'f': piece = typeof a === 'symbol' ? 'NaN' : formatNumber(+a); break;
          case 'j': try { piece = StringCtor(stringify(a)); } catch (e) { piece = '[Circular]'; } break;
          case 'o': case 'O': piece = show(a, false); break;
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
    for (let first = true; i < args.length; i++, first = false) {
      out += (first ? '' : ' ') + show(args[i], true);
    }
    return out;
  }

  // Levels are numbered on the way out; the host maps them back to names.
  const LEVELS = ['log', 'info', 'warn', 'error', 'debug'];
  const counts = new Map();
  const timers = new Map();
  let groupIndent = '';
  function emit(level, text) {
    if (groupIndent !== '') text = groupIndent + replaceString(text, /\n/g, '\n' + groupIndent);
    hostConsole(level, text);
  }
  const consoleObject = {};
  for (let i = 0; i < LEVELS.length; i++) {
    const level = i;
    defineProperty(consoleObject, LEVELS[i], {
      value: { [LEVELS[i]](...args) { emit(level, formatWithOptions(args)); } }[LEVELS[i]],
      writable: true, enumerable: true, configurable: true,
    });
  }
  const extras = {
    trace(...args) { emit(3, 'Trace' + (args.length ? ': ' + formatWithOptions(args) : '') + '\n' + replaceString(StringCtor(new Error().stack), /^[^\n]*\n/, '')); },
    dir(v) { emit(0, show(v, false)); },
    table(...args) { emit(0, formatWithOptions(args)); },
    assert(ok, ...args) { if (!ok) emit(3, 'Assertion failed' + (args.length ? ': ' + formatWithOptions(args) : '')); },
    count(label = 'default') { const n = (mapGet(counts, label) || 0) + 1; mapSet(counts, label, n); emit(0, label + ': ' + n); },
    countReset(label = 'default') { mapDelete(counts, label); },
    time(label = 'default') { mapSet(timers, label, dateNow()); },
    timeLog(label = 'default', ...args) { if (mapHas(timers, label)) emit(0, label + ': ' + (dateNow() - mapGet(timers, label)) + 'ms' + (args.length ? ' ' + formatWithOptions(args) : '')); },
    timeEnd(label = 'default') { if (mapHas(timers, label)) { emit(0, label + ': ' + (dateNow() - mapGet(timers, label)) + 'ms'); mapDelete(timers, label); } },
    group(...args) { if (args.length) emit(0, formatWithOptions(args)); groupIndent += '  '; },
    groupEnd() { groupIndent = sliceString(groupIndent, 2); },
  };
  extras.groupCollapsed = extras.group;
  const extraNames = ObjectKeys(extras);
  for (let i = 0; i < extraNames.length; i++) {
    defineProperty(consoleObject, extraNames[i], { value: extras[extraNames[i]], writable: true, enumerable: true, configurable: true });
  }
  defineProperty(G, 'console', { value: consoleObject, writable: true, enumerable: false, configurable: true });
  defineProperty(G, 'print', { value: consoleObject.log, writable: true, enumerable: false, configurable: true });

  function typeName(v) {
    if (v === null) return 'null';
    const t = typeof v;
    if (t !== 'object') return t;
    if (isArray(v)) return 'array';
    if (isError(v)) return 'error';
    switch (tagOf(v)) {
      case 'Date': return 'date';
      case 'RegExp': return 'regexp';
      case 'Map': return 'map';
      case 'Set': return 'set';
      case 'Promise': return 'promise';
      default: return 'object';
    }
  }

  function cleanPreview(s) {
    // Cut first: a 5 MB message must not cost a 5 MB regex scan. Lone surrogates cannot be
    // encoded as UTF-8: the preview is for people, so they become U+FFFD.
    const cut = s.length > PREVIEW_LIMIT;
    if (cut) s = sliceString(s, 0, PREVIEW_LIMIT);
    s = replaceString(s, /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
    return cut ? s + '…' : s;
  }

  function jsonOf(v) {
    switch (typeof v) {
      case 'number': return (v === v && v !== Infinity && v !== -Infinity && !ObjectIs(v, -0)) ? stringify(v) : undefined;
      case 'boolean': return stringify(v);
      case 'string': return v.length <= JSON_LIMIT ? stringify(v) : undefined;
      case 'object': break;
      default: return undefined;
    }
    if (v === null) return 'null';
    let text;
    try { text = stringify(v); } catch (e) { return undefined; }
    return typeof text === 'string' && text.length <= JSON_LIMIT ? text : undefined;
  }

  function describe(v, promiseState) {
    if (typeof v === 'number' && promiseState === undefined) {
      const p = formatNumber(v);
      const exact = v === v && v !== Infinity && v !== -Infinity && p !== '-0';
      return '{"type":"number","preview":"' + p + '"' + (exact ? ',"json":' + p : '') + '}';
    }
    let type, preview, json;
    try {
      type = typeName(v);
      preview = cleanPreview(show(v, false));
      json = jsonOf(v);
    } catch (e) {
      if (type === undefined) type = 'object';
      preview = '[uninspectable ' + type + ']';
      json = undefined;
    }
    if (promiseState !== undefined) { type = 'promise'; preview = 'Promise { ' + (promiseState === 0 ? '<pending>' : preview) + ' }'; json = undefined; }
    return '{"type":' + stringify(type) + ',"preview":' + stringify(preview) + (json === undefined ? '' : ',"json":' + json) + '}';
  }

  function describeError(e) {
    let name, message, stack;
    try {
      if (e !== null && (typeof e === 'object' || typeof e === 'function') && isError(e)) {
        const n = e.name, m = e.message, s = e.stack;
        name = typeof n === 'string' ? n : 'Error';
        message = typeof m === 'string' ? m : show(m, true);
        stack = typeof s === 'string' && s !== '' ? s : undefined;
      } else {
        name = 'Uncaught';
        message = show(e, false);
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
    if (typeof f !== 'function') throw new TypeError(name + ' is not a function');
    return ReflectApply(f, undefined, parseJSON(argsJson));
  }

  function defineFrozenGlobal(name, json) {
    const value = deepFreeze(parseJSON(json));
    // Configurable, so the host can replace it for the next execution; the value itself is
    // frozen and the property read-only, so a script cannot change what it was given.
    defineProperty(G, name, { value, writable: false, enumerable: false, configurable: true });
  }

  function deepFreeze(v) {
    if (v !== null && typeof v === 'object') {
      const keys = ObjectKeys(v);
      for (let i = 0; i < keys.length; i++) deepFreeze(v[keys[i]]);
      freeze(v);
    }
    return v;
  }

  // Host leftovers some QuickJS builds install; the guest must not see them.
  const leftovers = ['scriptArgs', 'gc', 'std', 'os', 'bjson', '__loadScript', 'navigator'];
  for (let i = 0; i < leftovers.length; i++) {
    if (hasOwn(G, leftovers[i])) delete G[leftovers[i]];
  }

  return freeze([describe, describeError, callGlobal, defineFrozenGlobal]);
})
