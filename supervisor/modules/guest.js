// The guest half of the modules (supervisor/modules/grants.py evaluates it once per base image,
// with the list of the modules the template enables). It defines `require` in every session,
// and gives each enabled module Node's names over its host functions (`host["fs.readFile"]`,
// ...). It holds no authority of its own: every check that matters is on the host, which is
// handed whatever a script passes, directly or through this file. What is captured here is
// captured only so that a script that breaks a built-in breaks its own code, not the modules.
(function installModules(enabled) {
  'use strict';
  'use strip';
  const G = globalThis;
  const H = G.host;
  const uncurry = Function.prototype.bind.bind(Function.prototype.call);
  const defineProperty = Object.defineProperty;
  const freeze = Object.freeze;
  const isArray = Array.isArray;
  const ReflectApply = Reflect.apply;
  const ObjectKeys = Object.keys;
  const ErrorCtor = Error, TypeErrorCtor = TypeError, DateCtor = Date;
  const PromiseCtor = Promise;
  const promiseThen = uncurry(Promise.prototype.then);
  const sliceString = uncurry(String.prototype.slice);
  const indexOfString = uncurry(String.prototype.indexOf);
  const toLowerCase = uncurry(String.prototype.toLowerCase);
  const toUpperCase = uncurry(String.prototype.toUpperCase);
  const toWellFormed = uncurry(String.prototype.toWellFormed);
  const charCodeAt = uncurry(String.prototype.charCodeAt);
  const fromCharCode = String.fromCharCode;
  const parseJSON = JSON.parse;
  const btoaFn = G.btoa, atobFn = G.atob;
  const escapeFn = G.escape, unescapeFn = G.unescape;
  const encodeURIComponentFn = encodeURIComponent, decodeURIComponentFn = decodeURIComponent;
  const Uint8ArrayCtor = Uint8Array, ArrayBufferCtor = ArrayBuffer;
  const isView = ArrayBuffer.isView;
  const typedArrayProto = Object.getPrototypeOf(Uint8Array.prototype);
  const viewBuffer = uncurry(Object.getOwnPropertyDescriptor(typedArrayProto, 'buffer').get);
  const viewOffset = uncurry(Object.getOwnPropertyDescriptor(typedArrayProto, 'byteOffset').get);
  const viewLength = uncurry(Object.getOwnPropertyDescriptor(typedArrayProto, 'byteLength').get);
  const dataViewProto = DataView.prototype;
  const dvBuffer = uncurry(Object.getOwnPropertyDescriptor(dataViewProto, 'buffer').get);
  const dvOffset = uncurry(Object.getOwnPropertyDescriptor(dataViewProto, 'byteOffset').get);
  const dvLength = uncurry(Object.getOwnPropertyDescriptor(dataViewProto, 'byteLength').get);
  const bufferLength = uncurry(Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'byteLength').get);
  const isDataView = (v) => { try { dvLength(v); return true; } catch { return false; } };
  const isArrayBuffer = (v) => { try { bufferLength(v); return true; } catch { return false; } };
  const indirectEval = G.eval;
  const lastIndexOfString = uncurry(String.prototype.lastIndexOf);
  const CATALOG = ['fs', 'database', 'exec', 'fetch'];
  const on = { __proto__: null };
  for (let i = 0; i < enabled.length; i++) on[enabled[i]] = true;

  // ----- crossing ---------------------------------------------------------------------------

  function hostFn(name) {
    const f = H === undefined ? undefined : H[name];
    if (typeof f !== 'function') throw new ErrorCtor('vm-system: host function ' + name + ' missing');
    return f;
  }
  function withCode(ctor, message, code) {
    const err = new ctor(message);
    defineProperty(err, 'code', { value: code, writable: true, enumerable: true, configurable: true });
    return err;
  }
  // A module's failure crosses as a HostError whose message is "CODE\x1fmessage".
  function translate(e, ctor) {
    if (e === null || typeof e !== 'object' || e.name !== 'HostError') return e;
    const text = e.message;
    if (typeof text !== 'string') return e;
    const cut = indexOfString(text, '\x1f');
    if (cut <= 0) return e;
    return withCode(ctor || ErrorCtor, sliceString(text, cut + 1), sliceString(text, 0, cut));
  }
  function bind(name, ctor) {
    const f = hostFn(name);
    return function () {
      try { return ReflectApply(f, undefined, arguments); } catch (e) { throw translate(e, ctor); }
    };
  }
  function bindAsync(name, ctor) {
    const f = hostFn(name);
    return function () {
      let p;
      try { p = ReflectApply(f, undefined, arguments); } catch (e) { return PromiseCtor.reject(translate(e, ctor)); }
      return promiseThen(p, undefined, (e) => { throw translate(e, ctor); });
    };
  }
  // A promise API over a synchronous call: the same work, its result or error as a promise.
  function promised(fn) {
    return function () {
      const args = arguments;
      return new PromiseCtor((resolve) => { resolve(ReflectApply(fn, undefined, args)); });
    };
  }
  function argType(name, what) {
    return withCode(TypeErrorCtor, 'The "' + name + '" argument must be ' + what, 'ERR_INVALID_ARG_TYPE');
  }
  function text(value, name) {
    if (typeof value !== 'string') throw argType(name, 'of type string');
    return value;
  }

  // Bytes cross as base64 text; a JavaScript string as UTF-8.
  function bytesOf(value) {
    if (isArrayBuffer(value)) return new Uint8ArrayCtor(value);
    if (isDataView(value)) return new Uint8ArrayCtor(dvBuffer(value), dvOffset(value), dvLength(value));
    if (isView(value)) return new Uint8ArrayCtor(viewBuffer(value), viewOffset(value), viewLength(value));
    return undefined;
  }
  function base64Of(bytes) {
    let bin = '';
    for (let i = 0; i < bytes.length; i += 0x2000) {
      const end = i + 0x2000 < bytes.length ? i + 0x2000 : bytes.length;
      const part = [];
      for (let j = i; j < end; j++) part[part.length] = bytes[j];
      bin += ReflectApply(fromCharCode, undefined, part);
    }
    return btoaFn(bin);
  }
  function bytesOfBase64(b64) {
    const bin = atobFn(b64);
    const out = new Uint8ArrayCtor(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = charCodeAt(bin, i);
    return out;
  }
  function utf8Base64(s) { return btoaFn(unescapeFn(encodeURIComponentFn(toWellFormed(s)))); }
  function utf8Text(bytes) {
    // Lossy, as TextDecoder is: a malformed sequence becomes U+FFFD.
    let out = '';
    for (let i = 0; i < bytes.length;) {
      const b = bytes[i];
      let n = b < 0x80 ? 1 : b >= 0xC2 && b < 0xE0 ? 2 : b >= 0xE0 && b < 0xF0 ? 3 : b >= 0xF0 && b < 0xF5 ? 4 : 0;
      if (n === 0 || i + n > bytes.length) { out += '\uFFFD'; i++; continue; }
      let bin = fromCharCode(b), ok = true;
      for (let k = 1; k < n; k++) {
        const c = bytes[i + k];
        if ((c & 0xC0) !== 0x80) { ok = false; break; }
        bin += fromCharCode(c);
      }
      if (ok) {
        try { out += decodeURIComponentFn(escapeFn(bin)); i += n; continue; } catch { ok = false; }
      }
      out += '\uFFFD';
      i++;
    }
    return out;
  }
  // (encoding) for a payload: a string as UTF-8, bytes as base64.
  function payload(data, name) {
    if (typeof data === 'string') return [data, 'utf8'];
    const bytes = bytesOf(data);
    if (bytes === undefined) throw argType(name, 'of type string or an instance of ArrayBuffer, TypedArray or DataView');
    return [base64Of(bytes), 'base64'];
  }
  function encodingOf(options, fallback) {
    let enc = options;
    if (options !== null && typeof options === 'object') enc = options.encoding;
    if (enc === undefined) return fallback;
    if (enc === null || enc === 'buffer') return 'buffer';
    if (enc === 'utf8' || enc === 'utf-8') return 'utf8';
    if (enc === 'base64') return 'base64';
    throw withCode(TypeErrorCtor, "The argument 'encoding' is invalid encoding. Received " + typeof enc, 'ERR_INVALID_ARG_VALUE');
  }
  function flag(options, name) {
    return options !== null && typeof options === 'object' && options[name] === true;
  }

  const modules = { __proto__: null };

  // ----- fs ---------------------------------------------------------------------------------

  if (on.fs) {
    const readFile = bind('fs.readFile'), writeFile = bind('fs.writeFile'), appendFile = bind('fs.appendFile');
    const readdir = bind('fs.readdir'), stat = bind('fs.stat'), exists = bind('fs.exists');
    const mkdir = bind('fs.mkdir'), rm = bind('fs.rm'), rename = bind('fs.rename');
    class Stats {
      isFile() { return this._kind === 'file'; }
      isDirectory() { return this._kind === 'directory'; }
      isSymbolicLink() { return this._link === true; }
    }
    function stats(s) {
      const out = new Stats();
      const names = ['size', 'mode', 'mtimeMs', 'atimeMs', 'ctimeMs'];
      for (let i = 0; i < names.length; i++) out[names[i]] = s[names[i]];
      out.mtime = new DateCtor(s.mtimeMs);
      out.atime = new DateCtor(s.atimeMs);
      out.ctime = new DateCtor(s.ctimeMs);
      defineProperty(out, '_kind', { value: s.kind });
      defineProperty(out, '_link', { value: s.isSymbolicLink });
      return out;
    }
    const fs = {
      // Go's readFileSync gives text: so does this one, unless an encoding says otherwise.
      readFileSync(path, options) {
        const enc = encodingOf(options, 'utf8');
        const got = readFile(text(path, 'path'), enc === 'utf8' ? 'utf8' : 'base64');
        return enc === 'buffer' ? bytesOfBase64(got) : got;
      },
      writeFileSync(path, data) { const p = payload(data, 'data'); writeFile(text(path, 'path'), p[0], p[1]); },
      appendFileSync(path, data) { const p = payload(data, 'data'); appendFile(text(path, 'path'), p[0], p[1]); },
      readdirSync(path) { return readdir(text(path === undefined ? '.' : path, 'path')); },
      statSync(path) { return stats(stat(text(path, 'path'), true)); },
      lstatSync(path) { return stats(stat(text(path, 'path'), false)); },
      existsSync(path) { return typeof path === 'string' && exists(path); },
      mkdirSync(path, options) { mkdir(text(path, 'path'), flag(options, 'recursive')); },
      rmSync(path, options) { rm(text(path, 'path'), flag(options, 'recursive'), flag(options, 'force')); },
      renameSync(from, to) { rename(text(from, 'oldPath'), text(to, 'newPath')); },
    };
    fs.promises = {
      readFile: promised(fs.readFileSync), writeFile: promised(fs.writeFileSync),
      appendFile: promised(fs.appendFileSync), readdir: promised(fs.readdirSync),
      stat: promised(fs.statSync), lstat: promised(fs.lstatSync), mkdir: promised(fs.mkdirSync), rm: promised(fs.rmSync),
      rename: promised(fs.renameSync),
    };
    modules.fs = fs;
  }

  // ----- database ---------------------------------------------------------------------------

  if (on.database) {
    const configure = bind('database.configure'), query = bind('database.query');
    const exec = bind('database.exec'), close = bind('database.close');
    function params(args) {
      const out = [];
      for (let i = 1; i < args.length; i++) out[out.length] = args[i];
      return out;
    }
    // What JSON cannot carry comes as a one-key tag (the value of a column is never an object
    // otherwise): a BLOB, an integer beyond 2^53, an infinite REAL.
    const BigIntCtor = BigInt;
    function untag(v) {
      if (v === null || typeof v !== 'object') return v;
      if (typeof v.$blob === 'string') return bytesOfBase64(v.$blob);
      if (typeof v.$bigint === 'string') return BigIntCtor(v.$bigint);
      if (v.$number === 'Infinity') return Infinity;
      if (v.$number === '-Infinity') return -Infinity;
      return v;
    }
    function untagRows(rows) {
      for (let i = 0; i < rows.length; i++) {
        const row = rows[i], keys = ObjectKeys(row);
        for (let k = 0; k < keys.length; k++) {
          const v = row[keys[k]];
          if (v !== null && typeof v === 'object') row[keys[k]] = untag(v);
        }
      }
      return rows;
    }
    const database = {
      configure(driver, dsn) { configure(text(driver, 'driver'), dsn === undefined ? '' : text(dsn, 'dsn')); },
      query(sql) { return untagRows(query(text(sql, 'sql'), params(arguments))); },
      exec(sql) {
        const r = exec(text(sql, 'sql'), params(arguments));
        r.lastInsertId = untag(r.lastInsertId);
        return r;
      },
      close() { close(); },
    };
    database.queryAsync = promised(database.query);
    database.execAsync = promised(database.exec);
    modules.database = database;
  }

  // ----- exec -------------------------------------------------------------------------------

  if (on.exec) {
    const run = bind('exec.run'), spawn = bindAsync('exec.spawn');
    function argv(args) {
      if (args === undefined) return [];
      if (!isArray(args)) throw argType('args', 'an array of strings');
      const out = [];
      for (let i = 0; i < args.length; i++) out[out.length] = text(args[i], 'args[' + i + ']');
      return out;
    }
    modules.exec = {
      // Go's meaning: the combined output, and an error when the command exits non-zero.
      run(cmd, args) {
        const r = run(text(cmd, 'cmd'), argv(args));
        if (r.code === 0) return r.output;
        const why = r.code === null ? 'was killed by signal ' + r.signal : 'exited with status ' + r.code;
        const err = withCode(ErrorCtor, "command '" + cmd + "' " + why + (r.output ? ': ' + r.output : ''), 'ERR_CHILD_PROCESS_FAILED');
        err.status = r.code;
        err.signal = r.signal;
        err.stdout = r.stdout;
        err.stderr = r.stderr;
        err.output = r.output;
        throw err;
      },
      spawn(cmd, args, options) {
        let input = null;
        if (options !== null && typeof options === 'object' && options.input !== undefined) input = payload(options.input, 'input');
        return spawn(text(cmd, 'cmd'), argv(args), input === null ? null : input[0], input === null ? null : input[1]);
      },
    };
  }

  // ----- fetch ------------------------------------------------------------------------------

  if (on.fetch) {
    const request = bindAsync('fetch.request', TypeErrorCtor);
    const headerName = (name) => toLowerCase(text(name, 'name'));
    class Headers {
      constructor(init) {
        defineProperty(this, '_list', { value: [] });
        if (init === undefined || init === null) return;
        if (init instanceof Headers) {
          const l = init._list;
          for (let i = 0; i < l.length; i++) this.append(l[i][0], l[i][1]);
        } else if (isArray(init)) {
          for (let i = 0; i < init.length; i++) {
            const pair = init[i];
            if (!isArray(pair) || pair.length !== 2) throw new TypeErrorCtor('Headers: each entry must be a [name, value] pair');
            this.append(pair[0], pair[1]);
          }
        } else if (typeof init === 'object') {
          const keys = ObjectKeys(init);
          for (let i = 0; i < keys.length; i++) this.append(keys[i], init[keys[i]]);
        } else {
          throw new TypeErrorCtor('Headers: init must be an object, an array of pairs or Headers');
        }
      }
      append(name, value) { const l = this._list; l[l.length] = [headerName(name), '' + value]; }
      set(name, value) { this.delete(name); this.append(name, value); }
      delete(name) {
        const n = headerName(name), l = this._list, keep = [];
        for (let i = 0; i < l.length; i++) if (l[i][0] !== n) keep[keep.length] = l[i];
        l.length = 0;
        for (let i = 0; i < keep.length; i++) l[i] = keep[i];
      }
      get(name) {
        const n = headerName(name), l = this._list;
        let out = null;
        for (let i = 0; i < l.length; i++) if (l[i][0] === n) out = out === null ? l[i][1] : out + ', ' + l[i][1];
        return out;
      }
      has(name) { return this.get(name) !== null; }
      forEach(callback, thisArg) {
        const l = this._list;
        for (let i = 0; i < l.length; i++) ReflectApply(callback, thisArg, [l[i][1], l[i][0], this]);
      }
      *entries() { const l = this._list; for (let i = 0; i < l.length; i++) yield [l[i][0], l[i][1]]; }
      *keys() { const l = this._list; for (let i = 0; i < l.length; i++) yield l[i][0]; }
      *values() { const l = this._list; for (let i = 0; i < l.length; i++) yield l[i][1]; }
      [Symbol.iterator]() { return this.entries(); }
    }
    function used(r) {
      if (r._state.used) return PromiseCtor.reject(new TypeErrorCtor('Body is unusable: Body has already been read'));
      r._state.used = true;
      return null;
    }
    class Response {
      constructor(body, init) {
        const o = init !== null && typeof init === 'object' ? init : {};
        const status = o.status === undefined ? 200 : o.status;
        let b64 = '';
        if (body !== undefined && body !== null) {
          const p = payload(body, 'body');
          b64 = p[1] === 'utf8' ? utf8Base64(p[0]) : p[0];
        }
        defineProperty(this, '_state', { value: { used: false, b64 } });
        this.status = status;
        this.statusText = o.statusText === undefined ? '' : '' + o.statusText;
        this.ok = status >= 200 && status < 300;
        this.headers = new Headers(o.headers);
        this.url = o.url === undefined ? '' : o.url;
        this.redirected = o.redirected === true;
        this.type = 'basic';
      }
      get bodyUsed() { return this._state.used; }
      arrayBuffer() {
        const refused = used(this);
        if (refused) return refused;
        const bytes = bytesOfBase64(this._state.b64);
        return PromiseCtor.resolve(viewBuffer(bytes));
      }
      bytes() {
        const refused = used(this);
        return refused || PromiseCtor.resolve(bytesOfBase64(this._state.b64));
      }
      text() {
        const refused = used(this);
        return refused || PromiseCtor.resolve(utf8Text(bytesOfBase64(this._state.b64)));
      }
      json() {
        const refused = used(this);
        return refused || new PromiseCtor((resolve) => { resolve(parseJSON(utf8Text(bytesOfBase64(this._state.b64)))); });
      }
    }
    function fetch(resource, init) {
      return new PromiseCtor((resolve) => {
        const url = typeof resource === 'string' ? resource : resource !== null && typeof resource === 'object' && typeof resource.url === 'string' ? resource.url : '' + resource;
        const o = init !== null && typeof init === 'object' ? init : {};
        const method = o.method === undefined ? 'GET' : toUpperCase(text(o.method, 'method'));
        const headers = new Headers(o.headers)._list;
        let body = null;
        if (o.body !== undefined && o.body !== null) {
          const p = payload(o.body, 'body');
          body = p[1] === 'utf8' ? utf8Base64(p[0]) : p[0];
        }
        resolve(promiseThen(request(url, method, headers, body), (r) => {
          const res = new Response(null, { status: r.status, statusText: r.statusText, headers: r.headers, url: r.url, redirected: r.redirected });
          res._state.b64 = r.body;
          return res;
        }));
      });
    }
    modules.fetch = { fetch, Headers, Response };
    const names = ['fetch', 'Headers', 'Response'];
    for (let i = 0; i < names.length; i++) {
      defineProperty(G, names[i], { value: modules.fetch[names[i]], writable: true, enumerable: false, configurable: true });
    }
  }

  for (const name in modules) freeze(modules[name]);

  // ----- require ----------------------------------------------------------------------------
  // A file or package is asked of the host (`modules.require`, a host call like the others:
  // budgeted and recorded), which resolves it inside the session's trees and answers its
  // resolved name, its kind and its text; the guest evaluates it once per name and keeps it.
  // `eval` here is indirect: a CommonJS file runs in sloppy mode, as in Node, with its own
  // `exports, require, module, __filename, __dirname`. (QuickJS-NG ignores `//# sourceURL`, so
  // its stack frames read `<input>`, with the file's own line numbers: the wrapper adds none.)

  const H_REQUIRE = H !== undefined && typeof H['modules.require'] === 'function' ? bind('modules.require') : undefined;
  const cache = { __proto__: null };     // resolved name -> module
  const resolved = { __proto__: null };  // referrer + '\0' + specifier -> resolved name

  function notEnabled(bare) {
    for (let i = 0; i < CATALOG.length; i++) {
      if (CATALOG[i] === bare) throw withCode(ErrorCtor, "module '" + bare + "' is not enabled for this template", 'ERR_MODULE_NOT_ENABLED');
    }
  }
  function dirnameOf(name) {
    const cut = lastIndexOfString(name, '/');
    return cut < 0 ? '.' : sliceString(name, 0, cut);
  }
  function builtin(bare) {
    const found = modules[bare];
    if (found === undefined) { notEnabled(bare); throw withCode(ErrorCtor, "Cannot find module '" + bare + "'", 'MODULE_NOT_FOUND'); }
    return found;
  }
  function evaluate(name, kind, source, fresh) {
    if (!fresh && cache[name] !== undefined) return cache[name];
    if (kind === 'builtin') return { exports: builtin(source), loaded: true };
    if (kind === 'json') {
      const m = { id: name, filename: name, loaded: true, exports: parseJSON(source) };
      cache[name] = m;
      return m;
    }
    const body = sliceString(source, 0, 2) === '#!' ? '//' + sliceString(source, 2) : source;
    const fn = indirectEval('(function (exports, require, module, __filename, __dirname) {' + body + '\n})');
    const m = { id: name, filename: name, loaded: false, exports: {} };
    cache[name] = m;  // before it runs: a cycle back to it gets what it exported so far
    try {
      ReflectApply(fn, m.exports, [m.exports, makeRequire(name), m, name, dirnameOf(name)]);
    } catch (e) {
      if (cache[name] === m) delete cache[name];
      throw e;
    }
    m.loaded = true;
    return m;
  }
  // The global `require` (a script's, the REPL's) resolves from the file whose code calls it,
  // as each Node module's own `require` does: the first stack frame that is not this file's, nor
  // code run by eval (`<input>`). The REPL, `-e` code and anything unnamed start at the root.
  function callerFile() {
    let stack;
    try { stack = new ErrorCtor().stack; } catch { return ''; }
    if (typeof stack !== 'string') return '';
    let at = 0;
    while (at < stack.length) {
      let end = indexOfString(stack, '\n', at);
      if (end < 0) end = stack.length;
      const line = sliceString(stack, at, end);
      at = end + 1;
      const open = indexOfString(line, ' (');
      if (open < 0 || sliceString(line, -1) !== ')') continue;
      let file = sliceString(line, open + 2, -1);
      for (let k = 0; k < 2; k++) {
        const colon = lastIndexOfString(file, ':');
        if (colon < 0) break;
        file = sliceString(file, 0, colon);
      }
      if (file !== 'vm-system:modules' && file !== '<input>' && file !== '') return file;
    }
    return '';
  }
  function makeRequire(referrer) {
    function require(id) {
      if (typeof id !== 'string') throw argType('id', 'of type string');
      const bare = sliceString(id, 0, 5) === 'node:' ? sliceString(id, 5) : id;
      const found = modules[bare];
      if (found !== undefined) return found;
      notEnabled(bare);
      const from = referrer === '' ? callerFile() : referrer;
      const key = from + '\0' + id;
      const known = resolved[key];
      if (known !== undefined && cache[known] !== undefined) return cache[known].exports;
      if (H_REQUIRE === undefined) throw withCode(ErrorCtor, "Cannot find module '" + id + "'", 'MODULE_NOT_FOUND');
      const r = H_REQUIRE(id, from);
      const m = evaluate(r.name, r.kind, r.source, false);
      resolved[key] = r.name;
      return m.exports;
    }
    return require;
  }
  const hook = freeze({
    __proto__: null,
    builtin,
    json(text) { return parseJSON(text); },
    define(name, source) { return evaluate(name, 'commonjs', source, false).exports; },
    main(name, source) { return evaluate(name, 'commonjs', source, true).exports; },
  });
  defineProperty(G, '__vmSystemCommonJS', { value: hook, writable: false, enumerable: false, configurable: false });
  defineProperty(G, 'require', { value: makeRequire(''), writable: true, enumerable: false, configurable: true });
})
