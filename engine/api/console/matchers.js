// Label matchers as Alertmanager writes them: {team="infra", severity=~"crit.*"}
// or team=infra,env!=dev; = != =~ !~; regexes anchored at both ends; a missing
// label matches as the empty string. The daemon matches silences with RE2; this
// uses the browser's RegExp, which agrees on the syntax matchers use.
const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;
const OP = /^(=~|!~|!=|=)/;
export const OPS = ["=", "!=", "=~", "!~"];

export function make(label, op, value) {
  const m = { label, op, value };
  if (op === "=~" || op === "!~") {
    try {
      m.re = new RegExp("^(?:" + value + ")$", "u");
    } catch (e) {
      throw new Error(`${label}${op}"${value}": not a valid regex`);
    }
  }
  return m;
}

export function parse(text) {
  let s = text.trim();
  if (s.startsWith("{")) {
    if (!s.endsWith("}")) throw new Error("missing the closing }");
    s = s.slice(1, -1);
  }
  const out = [];
  let i = 0;
  const ws = () => {
    while (i < s.length && /\s/.test(s[i])) i++;
  };
  for (;;) {
    ws();
    if (i >= s.length) break;
    const name = NAME.exec(s.slice(i));
    if (!name) throw new Error(`column ${i + 1}: expected a label name`);
    i += name[0].length;
    ws();
    const op = OP.exec(s.slice(i));
    if (!op) throw new Error(`column ${i + 1}: expected =, !=, =~ or !~ after ${name[0]}`);
    i += op[0].length;
    ws();
    let value = "";
    if (s[i] === '"') {
      i++;
      let closed = false;
      while (i < s.length) {
        const c = s[i++];
        if (c === "\\" && i < s.length) {
          const n = s[i++];
          value += n === "n" ? "\n" : n === "t" ? "\t" : n;
        } else if (c === '"') {
          closed = true;
          break;
        } else value += c;
      }
      if (!closed) throw new Error(`${name[0]}: missing the closing quote`);
    } else {
      const start = i;
      while (i < s.length && s[i] !== ",") i++;
      value = s.slice(start, i).trim();
    }
    out.push(make(name[0], op[0], value));
    ws();
    if (i < s.length) {
      if (s[i] !== ",") throw new Error(`column ${i + 1}: expected , between matchers`);
      i++;
    }
  }
  return out;
}

export function matches(m, labels) {
  const v = labels[m.label] ?? "";
  if (m.op === "=") return v === m.value;
  if (m.op === "!=") return v !== m.value;
  const hit = m.re.test(v);
  return m.op === "=~" ? hit : !hit;
}

export const matchesAll = (ms, labels) => ms.every((m) => matches(m, labels));

// what routes, silences and inhibit rules match on (engine/notify/router.py)
export const alertLabels = (a) => ({ ...(a.labels || {}), rule: a.rule, severity: a.severity });

export function toApi(m) {
  const out = { label: m.label };
  if (m.op === "=~" || m.op === "!~") out.regex = m.value;
  else out.value = m.value;
  if (m.op.startsWith("!")) out.negate = true;
  return out;
}

export function fromApi(r) {
  const re = r.regex !== undefined;
  const op = re ? (r.negate ? "!~" : "=~") : r.negate ? "!=" : "=";
  return make(r.label, op, re ? r.regex : r.value);
}

export const format = (m) => m.label + m.op + JSON.stringify(m.value);
