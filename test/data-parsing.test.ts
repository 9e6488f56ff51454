/**
 * Data loaders on small files written by the test: BOM, quoted newlines, "" escapes, CRLF, latin-1 bytes, GLUE TSV
 * (no quoting), JSONL; and bad input (missing / empty file, bad label, wrong encoding, malformed CSV, missing column),
 * each a DataError naming the file, line and field.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataError } from '../src/data/errors.ts';
import { readTextFile, parseDelimited } from '../src/data/delimited.ts';
import { readLabelledFile } from '../src/data/labelled-file.ts';
import { parsePolarityFile, loadPolarity } from '../src/data/polarity.ts';
import { parseTweetsFile } from '../src/data/tweets.ts';
import { loadGlue, readGlueFile } from '../src/data/glue.ts';
import { hashUnit, splitOf, splitByHash } from '../src/data/split.ts';
import { InvalidArgumentError } from '../src/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'ewtune-data-'));
let n = 0;
function file(content: string | Buffer, ext = 'csv'): string {
  const path = join(dir, `f${n++}.${ext}`);
  writeFileSync(path, content);
  return path;
}

function dataError(code: string, fields: { file?: string; line?: number; field?: string; message?: RegExp }) {
  return (e: unknown) => {
    assert.ok(e instanceof DataError, `not a DataError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (fields.file !== undefined) {
      assert.equal(e.file, fields.file);
      assert.ok(e.message.includes(fields.file), e.message);
    }
    if (fields.line !== undefined) assert.equal(e.line, fields.line, e.message);
    if (fields.field !== undefined) assert.equal(e.field, fields.field, e.message);
    if (fields.message !== undefined) assert.match(e.message, fields.message);
    return true;
  };
}

describe('data: parsing edge cases', () => {
  it('polarity layout: BOM dropped, "" unescaped, newline inside quotes, trailing " \\n" trimmed, labels −1 → 0 and 1 → 1', () => {
    const path = file('\uFEFF"1","he said "" wow "" . \n"\n"-1","two\nlines , a comma . \n"\n"1","plain"\n');
    const rows = parsePolarityFile(path);
    assert.deepEqual(rows.map((r) => [r.text, r.label]), [['he said " wow " .', 1], ['two\nlines , a comma .', 0], ['plain', 1]]);
    assert.deepEqual(rows.map((r) => r.id), ['polarity:1', 'polarity:3', 'polarity:6']);
  });

  it('CRLF records and CRLF inside quotes: the text keeps its inner line break, records start on the right lines', () => {
    const records = parseDelimited('a,b\r\n"x\r\ny",1\r\n\r\nz,2\r\n"é ""q""",3', 'mem.csv');
    assert.deepEqual(records.map((r) => r.fields), [['a', 'b'], ['x\r\ny', '1'], ['z', '2'], ['é "q"', '3']]);
    assert.deepEqual(records.map((r) => r.line), [1, 2, 5, 6]);
  });

  it('latin-1: bytes ≥ 0x80 decode as ISO-8859-1 (0xD1 → Ñ, 0x9D → U+009D, as Python latin-1), CRLF header', () => {
    const bytes = Buffer.concat([Buffer.from('sentiment,confidence,text\r\nnegative,0.75,"caf'), Buffer.from([0xe9, 0x2c, 0x20, 0xd1, 0x9d]), Buffer.from('"\r\npositive,,ok\r\n')]);
    const rows = parseTweetsFile(file(bytes));
    assert.deepEqual(rows.map((r) => [r.text, r.label]), [['café, Ñ\u009d', 0], ['ok', 2]]);
  });

  it('UTF-8 loaders refuse latin-1 bytes, naming the line of the first bad byte', () => {
    const path = file(Buffer.concat([Buffer.from('"1","fine"\n"-1","also fine"\n"1","caf'), Buffer.from([0xe9]), Buffer.from('"\n')]));
    assert.throws(() => parsePolarityFile(path), dataError('ERR_DATA_ENCODING', { file: path, line: 3, message: /byte 0xe9 at offset 36/ }));
  });

  it('missing file, empty file, BOM-only file and header-only file are typed errors', () => {
    const missing = join(dir, 'nope.csv');
    assert.throws(() => parsePolarityFile(missing), dataError('ERR_DATA_FILE', { file: missing, message: /no such file/ }));
    assert.throws(() => readTextFile(dir), dataError('ERR_DATA_FILE', { file: dir }));
    const empty = file('');
    assert.throws(() => parsePolarityFile(empty), dataError('ERR_DATA_EMPTY', { file: empty }));
    const bom = file('\uFEFF\n  \n');
    assert.throws(() => parsePolarityFile(bom), dataError('ERR_DATA_EMPTY', { file: bom }));
    const headerOnly = file('sentiment,confidence,text\r\n');
    assert.throws(() => parseTweetsFile(headerOnly), dataError('ERR_DATA_EMPTY', { file: headerOnly }));
  });

  it('a bad label names the file, line and field', () => {
    const path = file('"1","good"\n"0","zero is not a polarity label"\n');
    assert.throws(() => parsePolarityFile(path), dataError('ERR_DATA_LABEL', { file: path, line: 2, field: 'label', message: /"0" is not one of "-1", "1"/ }));
    const tweets = file('sentiment,confidence,text\nnegative,1,a\nhappy,1,b\n');
    assert.throws(() => parseTweetsFile(tweets), dataError('ERR_DATA_LABEL', { file: tweets, line: 3, field: 'sentiment' }));
  });

  it('malformed CSV (unclosed quote, wrong field count), a missing column and empty text are ERR_DATA_FORMAT with the line', () => {
    const unclosed = file('"1","ok"\n"1","never closed\n');
    assert.throws(() => parsePolarityFile(unclosed), dataError('ERR_DATA_FORMAT', { file: unclosed, line: 2, message: /Quote Not Closed/ }));
    const ragged = file('"1","ok"\n"1","a","b"\n');
    assert.throws(() => parsePolarityFile(ragged), dataError('ERR_DATA_FORMAT', { file: ragged, line: 2 }));
    const noText = file('sentiment,confidence,tweet\nnegative,1,a\n');
    assert.throws(() => parseTweetsFile(noText), dataError('ERR_DATA_FORMAT', { file: noText, line: 1, field: 'text', message: /no column "text"/ }));
    const blank = file('"1","ok"\n"-1"," \n"\n');
    assert.throws(() => parsePolarityFile(blank), dataError('ERR_DATA_FORMAT', { file: blank, line: 2, field: 'text' }));
  });

  it('a cached corpus that was never fetched says which command fetches it', () => {
    const saved = process.env.EWTUNE_CACHE;
    process.env.EWTUNE_CACHE = join(dir, 'empty-cache');
    try {
      assert.throws(() => loadPolarity(), dataError('ERR_DATA_NOT_FETCHED', { message: /ewtune data fetch polarity/ }));
    } finally {
      if (saved === undefined) delete process.env.EWTUNE_CACHE;
      else process.env.EWTUNE_CACHE = saved;
    }
  });
});

describe('data: generic JSONL / CSV loader', () => {
  it('JSONL with integer or named labels and an optional textPair; blank lines skipped; ids file:line', () => {
    const path = file('{"text": "a", "label": 1}\n\n{"text": "b", "textPair": "c", "label": "neg"}\n', 'jsonl');
    const rows = readLabelledFile(path, { labels: ['neg', 'pos'] });
    assert.deepEqual(rows, [{ id: `${path}:1`, text: 'a', label: 1 }, { id: `${path}:3`, text: 'b', textPair: 'c', label: 0 }]);
  });

  it('CSV with a header (extra columns ignored, column order free), named fields', () => {
    const path = file('\uFEFFid,label,sentence,other\r\n7,2,"x, y",z\r\n8,0,"multi\r\nline",z\r\n');
    const rows = readLabelledFile(path, { numClasses: 3, textField: 'sentence' });
    assert.deepEqual(rows.map((r) => [r.text, r.label, r.id]), [['x, y', 2, `${path}:2`], ['multi\r\nline', 0, `${path}:3`]]);
  });

  it('bad input: label out of range, non-JSON line, text not a string, missing column, no class count', () => {
    const range = file('{"text": "a", "label": 0}\n{"text": "b", "label": 2}\n', 'jsonl');
    assert.throws(() => readLabelledFile(range, { numClasses: 2 }), dataError('ERR_DATA_LABEL', { file: range, line: 2, field: 'label', message: /integer in \[0, 2\)/ }));
    const broken = file('{"text": "a", "label": 0}\n{"text": \n', 'jsonl');
    assert.throws(() => readLabelledFile(broken, { numClasses: 2 }), dataError('ERR_DATA_FORMAT', { file: broken, line: 2, message: /not JSON/ }));
    const numeric = file('{"text": 5, "label": 0}\n', 'jsonl');
    assert.throws(() => readLabelledFile(numeric, { numClasses: 2 }), dataError('ERR_DATA_FORMAT', { file: numeric, line: 1, field: 'text' }));
    const noLabel = file('text\nhello\n');
    assert.throws(() => readLabelledFile(noLabel, { numClasses: 2 }), dataError('ERR_DATA_FORMAT', { file: noLabel, line: 1, field: 'label' }));
    assert.throws(() => readLabelledFile(noLabel), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'numClasses');
    assert.throws(() => readLabelledFile(join(dir, 'x.txt'), { numClasses: 2 }), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'format');
  });
});

describe('data: GLUE TSV', () => {
  it('SST-2 layout: header, quotes literal (no quoting in GLUE), labels 0/1', () => {
    const path = file('sentence\tlabel\nit \'s a "charming" film \t1\nhide new secretions from the parental units \t0\n', 'tsv');
    const rows = readGlueFile(path, 'sst2');
    assert.deepEqual(rows.map((r) => [r.text, r.label]), [['it \'s a "charming" film ', 1], ['hide new secretions from the parental units ', 0]]);
  });

  it('pair tasks: QNLI, RTE (named labels) and MRPC (its column names); CoLA by column index without header', () => {
    const qnli = file('index\tquestion\tsentence\tlabel\n0\tWhat?\tThis.\tnot_entailment\n1\tWho?\tHim.\tentailment\n', 'tsv');
    assert.deepEqual(readGlueFile(qnli, 'qnli').map((r) => [r.text, r.textPair, r.label]), [['What?', 'This.', 1], ['Who?', 'Him.', 0]]);
    const rte = file('index\tsentence1\tsentence2\tlabel\n0\tA cat.\tAn animal.\tentailment\n', 'tsv');
    assert.deepEqual(readGlueFile(rte, 'rte').map((r) => [r.text, r.textPair, r.label]), [['A cat.', 'An animal.', 0]]);
    const mrpc = file('\uFEFFQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t702876\t702977\tHe said.\tHe stated.\n', 'tsv');
    assert.deepEqual(readGlueFile(mrpc, 'mrpc').map((r) => [r.text, r.textPair, r.label]), [['He said.', 'He stated.', 1]]);
    const cola = file('gj04\t1\t\tOur friends won\'t buy this analysis.\nclc95\t0\t*\tThe more you eat, the you want.\n', 'tsv');
    assert.deepEqual(readGlueFile(cola, 'cola').map((r) => [r.text, r.label]), [['Our friends won\'t buy this analysis.', 1], ['The more you eat, the you want.', 0]]);
  });

  it('an unlabelled GLUE test.tsv, a bad label and a ragged row are typed errors', () => {
    const test = file('index\tsentence\n0\tuncertain .\n', 'tsv');
    assert.throws(() => readGlueFile(test, 'sst2'), dataError('ERR_DATA_FORMAT', { file: test, line: 1, field: 'label' }));
    const bad = file('sentence\tlabel\ngood\t1\nbad\t-1\n', 'tsv');
    assert.throws(() => readGlueFile(bad, 'sst2'), dataError('ERR_DATA_LABEL', { file: bad, line: 3, field: 'label' }));
    const ragged = file('sentence\tlabel\ngood\t1\textra\n', 'tsv');
    assert.throws(() => readGlueFile(ragged, 'sst2'), dataError('ERR_DATA_FORMAT', { file: ragged, line: 2 }));
    assert.throws(() => readGlueFile(bad, 'sst5' as 'sst2'), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'task');
  });

  it('with a dev file: dev.tsv is the test split, validation is carved from train.tsv', () => {
    const lines = Array.from({ length: 200 }, (_, i) => `sentence number ${i}\t${i % 2}`);
    const train = file(`sentence\tlabel\n${lines.join('\n')}\n`, 'tsv');
    const dev = file('sentence\tlabel\nheld out\t1\n', 'tsv');
    const corpus = loadGlue({ task: 'sst2', trainPath: train, testPath: dev, validationFraction: 0.25 });
    assert.deepEqual(corpus.test.map((r) => r.text), ['held out']);
    assert.equal(corpus.train.length + corpus.validation.length, 200);
    const expectedValidation = lines.filter((l) => hashUnit(l.split('\t')[0]) < 0.25).length;
    assert.equal(corpus.validation.length, expectedValidation);
    assert.deepEqual(corpus.labels, ['negative', 'positive']);
  });
});

describe('data: hash splits', () => {
  it('split = SHA-256 of the key: known values computed with Python hashlib', () => {
    // int.from_bytes(hashlib.sha256(k.encode()).digest()[:4], 'big') / 2**32
    assert.equal(hashUnit('simplistic , silly and tedious .'), 0x44643707 / 2 ** 32);
    assert.equal(splitOf('simplistic , silly and tedious .'), 'validation'); // 0.267 ∈ [0.2, 0.3)
  });

  it('fractions are checked; splits are disjoint, cover the input and keep its order', () => {
    assert.throws(() => splitOf('a', { testFraction: 1 }), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'testFraction');
    assert.throws(() => splitOf('a', { testFraction: 0.5, validationFraction: 0.5 }), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'validationFraction');
    const items = Array.from({ length: 1000 }, (_, i) => `item ${i}`);
    const s = splitByHash(items, (x) => x);
    assert.equal(s.train.length + s.validation.length + s.test.length, 1000);
    assert.deepEqual([...s.train, ...s.validation, ...s.test].sort(), [...items].sort());
    for (const part of [s.train, s.validation, s.test]) assert.deepEqual(part, items.filter((x) => part.includes(x)));
  });
});
