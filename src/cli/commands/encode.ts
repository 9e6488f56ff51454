/**
 * `ewtune encode --model DIR --text T [--text-pair P] [--max-length N] [--json]`: tokenise with the directory's
 * tokenizer and print the token ids, token types and the normalised mean-pooled sentence embedding (what
 * sentence-transformers' all-MiniLM-L6-v2 returns), so a user can check a model directory against Python.
 */
import * as tf from '@tensorflow/tfjs';
import { chooseBackend, type BackendPreference } from '../../backend/index.ts';
import { InvalidArgumentError } from '../../errors.ts';
import { loadEncoder } from '../../model-dir/load.ts';
import { numberFlag, parseFlags, UsageError, type CliCommand } from '../args.ts';

/** What `ewtune encode --json` prints. */
export interface EncodeOutput {
  inputIds: number[];
  tokenTypeIds: number[];
  /** Mean over the tokens of the last hidden states, divided by its L2 norm. */
  sentenceEmbedding: number[];
}

/** Encodes one text (or pair) with a loaded encoder ('pooled' output, mean pooling): the JSON of `ewtune encode`. */
export async function encodeText(modelDir: string, text: string, options: { textPair?: string; maxLength?: number } = {}): Promise<EncodeOutput> {
  const { dir, model } = await loadEncoder(modelDir, { output: 'pooled', pooling: 'mean', dropout: false });
  try {
    const e = dir.tokenizer.encode(text, options);
    const T = e.inputIds.length;
    const embedding = tf.tidy(() => {
      const pooled = model.predict([
        tf.tensor2d([e.inputIds], [1, T], 'int32'), tf.tensor2d([e.tokenTypeIds], [1, T], 'int32'), tf.ones([1, T]),
      ]) as tf.Tensor;
      return tf.div(pooled, tf.norm(pooled, 'euclidean', -1, true));
    });
    const sentenceEmbedding = Array.from(await embedding.data());
    embedding.dispose();
    return { inputIds: e.inputIds, tokenTypeIds: e.tokenTypeIds, sentenceEmbedding };
  } finally {
    model.dispose();
  }
}

export const encodeCommand: CliCommand = {
  usage: 'ewtune encode --model DIR --text T [--text-pair P] [--max-length N] [--backend auto|tensorflow|wasm|cpu] [--json]\n'
    + '  DIR: a Hugging Face BERT-family directory (config.json, model.safetensors, tokenizer.json), e.g. from `ewtune models fetch minilm`.\n'
    + '  --max-length: longest sequence in tokens (default: the model\'s max_position_embeddings); longer texts are truncated.',
  async run(argv, io) {
    const { values } = parseFlags(argv, {
      model: { type: 'string' }, text: { type: 'string' }, 'text-pair': { type: 'string' }, 'max-length': { type: 'string' },
      backend: { type: 'string', default: 'auto' }, json: { type: 'boolean', default: false },
    });
    if (values.model === undefined) throw new UsageError('--model is required');
    if (values.text === undefined) throw new UsageError('--text is required');
    const maxLength = numberFlag('--max-length', values['max-length'], false);
    if (maxLength !== undefined && (!Number.isInteger(maxLength) || maxLength < 2)) throw new InvalidArgumentError('--max-length', values['max-length'], 'an integer ≥ 2');
    const backend = values.backend as BackendPreference;
    if (!['auto', 'tensorflow', 'wasm', 'cpu'].includes(backend)) throw new InvalidArgumentError('--backend', backend, 'one of auto, tensorflow, wasm, cpu');
    await chooseBackend(backend);
    const out = await encodeText(values.model, values.text, {
      ...(values['text-pair'] !== undefined ? { textPair: values['text-pair'] } : {}),
      ...(maxLength !== undefined ? { maxLength } : {}),
    });
    if (values.json) io.out(JSON.stringify(out));
    else {
      io.out(`tokens (${out.inputIds.length}): ${out.inputIds.join(' ')}\ntoken types: ${out.tokenTypeIds.join(' ')}\n`
        + `sentence embedding (${out.sentenceEmbedding.length}, L2-normalised): ${out.sentenceEmbedding.slice(0, 8).map((v) => v.toFixed(6)).join(' ')} …`);
    }
    return 0;
  },
};
