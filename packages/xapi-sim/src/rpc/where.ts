import { XapiFailure } from '../errors.js'
import type { SimRecord } from '../model/db.js'

/*
 * The expression language of `<class>.get_all_records_where` (xapi's Db_filter):
 *   expr := 'true' | 'false' | 'not' expr | expr 'and' expr | expr 'or' expr | '(' expr ')'
 *         | val '=' val | val '<>' val
 *   val  := 'field' '"name"' | '"literal"'
 * Field values compare as strings (bools `true`/`false`, numbers in decimal).
 */

type Val = { field: string } | { literal: string }
export type WhereExpr =
  | { t: 'const'; v: boolean }
  | { t: 'not'; e: WhereExpr }
  | { t: 'and' | 'or'; a: WhereExpr; b: WhereExpr }
  | { t: 'eq' | 'ne'; a: Val; b: Val }

function tokenize(s: string): string[] {
  const out: string[] = []
  const re = /\s*("(?:[^"\\]|\\.)*"|<>|=|\(|\)|[A-Za-z_]+)/y
  let i = 0
  while (i < s.length) {
    if (/^\s*$/.test(s.slice(i))) break
    re.lastIndex = i
    const m = re.exec(s)
    if (!m) throw invalid(s)
    out.push(m[1]!)
    i = re.lastIndex
  }
  return out
}

function invalid(s: string): XapiFailure {
  return new XapiFailure('INTERNAL_ERROR', [`Invalid expression: ${s}`])
}

/** Parses a where-expression; INTERNAL_ERROR when it is not one. */
export function parseWhere(src: string): WhereExpr {
  const toks = tokenize(src)
  let pos = 0
  const peek = () => toks[pos]
  const next = () => {
    const t = toks[pos++]
    if (t === undefined) throw invalid(src)
    return t
  }
  const val = (): Val => {
    const t = next()
    if (t === 'field') {
      const name = next()
      if (!name.startsWith('"')) throw invalid(src)
      return { field: JSON.parse(name) as string }
    }
    if (t.startsWith('"')) return { literal: JSON.parse(t) as string }
    throw invalid(src)
  }
  const atom = (): WhereExpr => {
    const t = peek()
    if (t === 'true' || t === 'false') {
      pos++
      return { t: 'const', v: t === 'true' }
    }
    if (t === 'not') {
      pos++
      return { t: 'not', e: atom() }
    }
    if (t === '(') {
      pos++
      const e = or()
      if (next() !== ')') throw invalid(src)
      return e
    }
    const a = val()
    const op = next()
    if (op !== '=' && op !== '<>') throw invalid(src)
    return { t: op === '=' ? 'eq' : 'ne', a, b: val() }
  }
  const and = (): WhereExpr => {
    let e = atom()
    while (peek() === 'and') {
      pos++
      e = { t: 'and', a: e, b: atom() }
    }
    return e
  }
  const or = (): WhereExpr => {
    let e = and()
    while (peek() === 'or') {
      pos++
      e = { t: 'or', a: e, b: and() }
    }
    return e
  }
  const e = or()
  if (pos !== toks.length) throw invalid(src)
  return e
}

function valueOf(v: Val, rec: SimRecord): string {
  if ('literal' in v) return v.literal
  const x = rec[v.field]
  return x === undefined || x === null ? '' : typeof x === 'object' ? JSON.stringify(x) : String(x)
}

/** Evaluates a where-expression on a record. */
export function matchWhere(e: WhereExpr, rec: SimRecord): boolean {
  switch (e.t) {
    case 'const':
      return e.v
    case 'not':
      return !matchWhere(e.e, rec)
    case 'and':
      return matchWhere(e.a, rec) && matchWhere(e.b, rec)
    case 'or':
      return matchWhere(e.a, rec) || matchWhere(e.b, rec)
    case 'eq':
      return valueOf(e.a, rec) === valueOf(e.b, rec)
    case 'ne':
      return valueOf(e.a, rec) !== valueOf(e.b, rec)
  }
}
