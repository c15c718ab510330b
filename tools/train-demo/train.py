"""Trains the demo model on samples streamed by tools/train-demo.ts (see samples.ts for the record format).

Run by `npm run train-demo`, not by hand. Steps:
1. check: this PyTorch forward gives the project's reference logits on the initial checkpoint (--check);
2. train: the ViT's positional embedding starts from a 2-D sine-cosine table (see sincos_2d); Adam on the answer tokens' cross-entropy, one scene and all its questions a step, read from
   stdin as they are generated;
   the embedding and lm_head train only the rows of --rows (the tokens the scenes' prompts and answers
   use), so the rest stay the seeded random values make-tiny reproduces and need not be stored;
3. save: the trained tensors (all but embedding/lm_head whole, those two as their trained rows) to
   --out/trained.safetensors, with the held-out loss and token accuracy along the way in --out/log.jsonl.
"""
import argparse
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from molmo2_torch import EMBEDDING, LM_HEAD, NEW_EMBEDDING, POSITIONAL_EMBEDDING, Molmo2Torch, read_checkpoint, read_safetensors_f, write_safetensors

MAGIC = 0x3153324D


def read_record(stream):
    prefix = stream.read(8)
    if len(prefix) < 8:
        return None
    magic, header_len = struct.unpack('<II', prefix)
    if magic != MAGIC:
        raise ValueError(f'bad sample record (magic {magic:#x})')
    h = json.loads(stream.read(header_len))

    def take(dtype, count):
        n = np.dtype(dtype).itemsize * count
        raw = stream.read(n)
        if len(raw) != n:
            raise ValueError('sample record cut short')
        return np.frombuffer(raw, dtype=dtype).copy()

    seq, crops = h['seq'], h['crops']
    rec = {'header': h, 'ids': torch.from_numpy(take('<i4', seq).astype(np.int64)), 'types': torch.from_numpy(take('u1', seq))}
    if not h['follower']:
        rec['pooled'] = torch.from_numpy(take('<i4', h['pool_rows'] * h['pool_size']).astype(np.int64)).view(h['pool_rows'], h['pool_size'])
        rec['pixels'] = torch.from_numpy(take('<f4', crops * h['patches'] * h['patch_dim'])).view(crops, h['patches'], h['patch_dim'])
    if h['extra_rows']:
        rec['extra'] = take('<f4', h['extra_rows'] * h['extra_cols']).reshape(h['extra_rows'], h['extra_cols'])
    return rec


def read_group(stream):
    """A record and the followers that share its visual input, or None at the end of the stream."""
    first = read_record(stream)
    if first is None:
        return None
    group = [first] + [read_record(stream) for _ in range(first['header']['followers'])]
    if any(r is None or not r['header']['follower'] for r in group[1:]):
        raise ValueError('a sample group is cut short')
    return group


def group_hidden(model, group, features=None, watch=(), probe=None):
    """
    For each question of a group: hidden states at the positions that predict its answer, the answer
    tokens, and (with `watch`) the attention loss of its points (see attention_loss), else None.
    """
    first = group[0]
    if features is None:
        features = model.image_features(first['pixels'], first['pooled'])
    out = []
    for rec in group:
        h = rec['header']
        attend = h.get('attend') or []
        if watch and attend:
            hidden, watched = model(rec['ids'], rec['types'], features, h['image_patch_id'], watch)
            attention = attention_loss(watched, attend, probe)
        else:
            hidden, attention = model(rec['ids'], rec['types'], features, h['image_patch_id']), None
        # Rows of the answer that predict coordinate digits (for the log: what the picture must decide).
        coord_rows = [p - (h['answer_start'] - 1) for start, end, *_ in attend for p in range(start, end)]
        out.append((hidden[h['answer_start'] - 1 : -1], rec['ids'][h['answer_start'] :], attention, coord_rows))
    return out


def attention_loss(watched, attend, probe=None):
    """
    Training-only: −log of the attention mass that each watched head puts on the image tokens over the
    object, at the answer positions that write that object's x and y (tools/train-demo/attention-targets.ts),
    averaged over positions, points and heads. It shows the decoder where to look. With `probe` (a
    linear map per watched layer), also the squared error of reading the point's (x, y) / 1000 from what
    the head reads there, so that the image tokens' values carry where they are in a form later layers
    can turn into digits. Neither term reaches the shipped checkpoint.
    """
    looks, reads = [], []
    for layer, (probs, values) in watched.items():
        for start, end, keys, x, y in attend:
            rows = probs[start:end]
            mass = rows[:, torch.tensor(keys)].sum(-1)
            looks.append(-torch.log(mass.clamp(min=1e-6)).mean())
            if probe is not None:
                read = probe[str(layer)](rows @ values)
                reads.append((read - torch.tensor([x / 1000.0, y / 1000.0])).pow(2).sum(-1).mean())
    look = torch.stack(looks).mean()
    read = torch.stack(reads).mean() if reads else None
    # The probe's squared error is on 0–1 coordinates: ×10 puts a useful one (~0.01) near the look term's scale.
    loss = look if read is None else (look + 10.0 * read) / 2
    return loss, float(look), (float(read) if read is not None else None)


def group_loss(model, group, features=None, watch=(), probe=None):
    """
    Mean cross-entropy over every answer token of the group, the per-question (loss, logits, cols), and
    the mean attention loss of the questions that have points (None if none has, or nothing is watched).
    """
    hidden_parts = group_hidden(model, group, features, watch, probe)
    parts = [model.answer_loss(hidden, target) for hidden, target, _, _ in hidden_parts]
    tokens = sum(int(cols.numel()) for _, _, cols in parts)
    attention = [a for _, _, a, _ in hidden_parts if a is not None]
    # Cross-entropy of the coordinate digits alone, for the log (the rest of an answer is text the question decides).
    digit_losses = []
    with torch.no_grad():
        for (_, logits, cols), (_, _, _, rows) in zip(parts, hidden_parts):
            if rows:
                r = torch.tensor(rows)
                digit_losses.append(float(model.token_losses(logits[r], cols[r]).mean()))
    model.last_digit_loss = float(np.mean(digit_losses)) if digit_losses else None
    if attention:
        reads = [r for _, _, r in attention if r is not None]
        attention = (torch.stack([l for l, _, _ in attention]).mean(), float(np.mean([k for _, k, _ in attention])), float(np.mean(reads)) if reads else None)
    return sum(loss * int(cols.numel()) for loss, _, cols in parts) / tokens, parts, (attention or None)


def check_against_reference(model, path):
    with open(path, 'rb') as f:
        rec = read_record(f)
    h = rec['header']
    expected = rec['extra']
    with torch.no_grad():
        [(hidden, _, _, _)] = group_hidden(model, [rec])
        logits = model.logits(hidden)
    diff = float(np.abs(logits.numpy() - expected).max())
    scale = float(np.abs(expected).max())
    same_tokens = bool((logits.argmax(-1).numpy() == expected.argmax(-1)).all())
    print(json.dumps({'check': 'pytorch vs reference', 'tokens': h['seq'], 'rows': h['extra_rows'], 'max_abs_diff': diff, 'max_abs_logit': scale, 'same_argmax': same_tokens}), flush=True)
    if diff > 1e-3 * max(1.0, scale) or not same_tokens:
        raise SystemExit(f'the PyTorch forward differs from the reference by {diff:.3g} (logits up to {scale:.3g}); not training')


def resume_from(model, path, vocab):
    """Puts the tensors of an earlier run in place (the optimizer state starts afresh)."""
    header_tensors = read_safetensors_f(path)
    tensors, meta = header_tensors
    base = json.loads(meta['base_rows'])
    new = [r + vocab for r in json.loads(meta['new_rows'])]
    if base + new != model.rows.tolist():
        raise SystemExit(f'{path} trained other token rows than this run; it cannot be resumed')
    for name, value in tensors.items():
        if name.endswith('@rows'):
            continue
        model.p(name).copy_(torch.from_numpy(value))
    model.emb_rows.copy_(torch.from_numpy(np.concatenate([tensors[f'{EMBEDDING}@rows'], tensors[f'{NEW_EMBEDDING}@rows']])))
    model.head_rows.copy_(torch.from_numpy(tensors[f'{LM_HEAD}@rows']))
    print(json.dumps({'resumed_from': path}), flush=True)


def sincos_2d(positions, dim):
    """
    The fixed 2-D sine-cosine table of MAE/ViT: half the channels encode the patch row, half its column,
    at geometric frequencies. Training starts the ViT's positional embedding from it, not from the
    seeded random values, so that where a patch is can be read from its features from the first step
    (the aim: coordinates learned sooner; not yet measured — the first run with it was stopped before
    its first evaluation). It trains from there and is stored whole, like every other trained tensor.
    """
    side = int(round(positions ** 0.5))
    if side * side != positions or dim % 4:
        raise ValueError(f'a {positions}×{dim} positional embedding is not a square grid with channels in fours')
    quarter = dim // 4
    freq = 1.0 / (100.0 ** (torch.arange(quarter, dtype=torch.float32) / quarter))
    grid = torch.arange(side, dtype=torch.float32)
    rows, cols = torch.meshgrid(grid, grid, indexing='ij')
    parts = []
    for coord in (rows.reshape(-1), cols.reshape(-1)):
        angle = coord[:, None] * freq[None, :]
        parts += [torch.sin(angle), torch.cos(angle)]
    return torch.cat(parts, dim=1)


def evaluate(model, held_out):
    """Held-out loss and token accuracy, and the RMS of the first sample's image features (it must stay near the embeddings')."""
    model.eval()
    loss_sum, correct, total = 0.0, 0, 0
    with torch.no_grad():
        first = held_out[0]
        feature_rms = float(model.image_features(first['pixels'], first['pooled']).pow(2).mean().sqrt())
        for rec in held_out:
            _, [(loss, logits, cols)], _ = group_loss(model, [rec])
            loss_sum += float(loss) * int(cols.numel())
            # A trained row wins only if it beats the zero logits of every other token too.
            best = logits.max(dim=1)
            correct += int(((best.indices == cols) & (best.values > 0)).sum())
            total += int(cols.numel())
    model.train()
    return loss_sum / total, correct / total, feature_rms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--init', required=True)
    ap.add_argument('--check', required=True)
    ap.add_argument('--held-out', required=True)
    ap.add_argument('--rows', required=True, help='JSON list of token ids whose embedding and lm_head rows train')
    ap.add_argument('--out', required=True)
    ap.add_argument('--steps', type=int, required=True)
    ap.add_argument('--lr', type=float, default=2e-3)
    ap.add_argument('--warmup', type=int, default=100)
    ap.add_argument('--weight-decay', type=float, default=0.1)
    ap.add_argument('--feature-penalty', type=float, default=0.1)
    ap.add_argument('--qk-gain', type=float, default=1.0, help='multiplies the decoder q/k norm weights at the start (not on --resume)')
    ap.add_argument('--attend-layers', default='', help='decoder layers (comma-separated) whose head 0 the attention loss trains; empty = no attention loss')
    ap.add_argument('--attend-weight', type=float, default=0.5, help='weight of the attention loss (see attention_loss)')
    ap.add_argument('--position-probe', action='store_true', help='also train a linear read-out of the point position from each watched head (see attention_loss)')
    ap.add_argument('--accumulate', type=int, default=1, help='scenes per optimizer step')
    ap.add_argument('--eval-every', type=int, default=250)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--resume', help='trained tensors (F32 or F16 .safetensors with the same rows) to start from instead of the initial values')
    a = ap.parse_args()
    watch = tuple(int(l) for l in a.attend_layers.split(',') if l.strip())
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)

    config, tensors = read_checkpoint(a.init)
    model = Molmo2Torch(config, tensors)
    check_against_reference(model, a.check)

    with open(a.rows) as f:
        rows = sorted(set(json.load(f)))
    vocab = config['text_config']['vocab_size']
    model.compact_vocabulary(rows)
    with torch.no_grad():
        if a.resume:
            resume_from(model, a.resume, vocab)
        else:
            model.p(POSITIONAL_EMBEDDING).copy_(sincos_2d(*model.p(POSITIONAL_EMBEDDING).shape))
            # QK-norm caps an attention logit at about gain²·√head_dim (~6 at gain 1, head_dim 32): too
            # little to single out one of ~400 image tokens (a gap of ln 400 ≈ 6 is needed), and the norm
            # weights grow only by ~lr per step. A larger starting gain leaves room for sharp attention.
            for i in range(config['text_config']['num_hidden_layers']):
                for which in ('q_norm', 'k_norm'):
                    model.p(f'model.transformer.blocks.{i}.self_attn.{which}.weight').mul_(a.qk_gain)

    held_out = []
    with open(a.held_out, 'rb') as f:
        while (rec := read_record(f)) is not None:
            held_out.append(rec)

    # Weight decay on the weight matrices (not norms, biases, the vocabulary rows or the positional
    # table): weights behind a norm (QK-norm, the decoder's input norm) otherwise only grow under Adam.
    decayed, kept = [], []
    for name, p in model.named_parameters():
        (decayed if p.dim() >= 2 and name not in ('emb_rows', 'head_rows') and 'positional_embedding' not in name else kept).append(p)
    # The position probe is a training aid outside the model: it is neither saved nor clipped with it.
    probe = torch.nn.ModuleDict({str(l): torch.nn.Linear(config['text_config']['head_dim'], 2) for l in watch}) if a.position_probe else None
    if probe is not None:
        kept += list(probe.parameters())
    opt = torch.optim.AdamW([{'params': decayed, 'weight_decay': a.weight_decay}, {'params': kept, 'weight_decay': 0.0}], lr=a.lr, betas=(0.9, 0.98))
    schedule = lambda step: min(1.0, (step + 1) / a.warmup) * max(0.05, 0.5 * (1 + np.cos(np.pi * min(1.0, step / a.steps))))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    log = open(os.path.join(a.out, 'log.jsonl'), 'w')
    started = time.time()
    running, running_attention, running_digits = [], [], []
    stdin = sys.stdin.buffer
    for step in range(1, a.steps + 1):
        opt.zero_grad(set_to_none=True)
        step_loss = 0.0
        for _ in range(a.accumulate):
            group = read_group(stdin)
            if group is None:
                raise SystemExit('the sample stream ended early')
            features = model.image_features(group[0]['pixels'], group[0]['pooled'])
            loss, _, attention = group_loss(model, group, features, watch, probe)
            step_loss += float(loss) / a.accumulate
            if model.last_digit_loss is not None:
                running_digits.append(model.last_digit_loss)
            if attention is not None:
                term, look, read = attention
                running_attention.append((look, read))
                loss = loss + a.attend_weight * term
            # Image features are added to the <im_patch> embedding and read through an RMS norm, so the
            # answers do not fix their scale. Left alone they ran away (10⁴× the text embeddings by step
            # 1000: each step then changed them relatively less and the image path all but stopped
            # learning); held only from above, weight decay shrank them below the constant <im_patch>
            # embedding (RMS 0.12 against 0.18), so every image token looked alike to the decoder. The
            # penalty holds their mean square near 1, above the embeddings' ~0.04.
            loss = loss + a.feature_penalty * (features.pow(2).mean() - 1.0) ** 2
            (loss / a.accumulate).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        running.append(step_loss)
        if step % 50 == 0:
            recent = {'step': step, 'recent_train_loss': round(float(np.mean(running[-50:])), 4), 'seconds': round(time.time() - started, 1)}
            if running_digits:
                recent['recent_digit_loss'] = round(float(np.mean(running_digits[-50 * a.accumulate :])), 4)
            if running_attention:
                # Mean −log(mass on the object's tokens), and the probe's mean squared error on 0–1 coordinates (RMS ≈ √ of it).
                recent_look = running_attention[-50 * a.accumulate :]
                recent['recent_look'] = round(float(np.mean([l for l, _ in recent_look])), 4)
                reads = [r for _, r in recent_look if r is not None]
                if reads:
                    recent['recent_probe_mse'] = round(float(np.mean(reads)), 5)
            print(json.dumps(recent), flush=True)
        if step % a.eval_every == 0 or step == a.steps:
            held_loss, held_acc, feature_rms = evaluate(model, held_out)
            entry = {'step': step, 'train_loss': float(np.mean(running)), 'held_out_loss': held_loss, 'held_out_token_accuracy': held_acc, 'image_feature_rms': round(feature_rms, 3), 'seconds': round(time.time() - started, 1), 'lr': sched.get_last_lr()[0]}
            running = []
            print(json.dumps(entry), flush=True)
            log.write(json.dumps(entry) + '\n')
            log.flush()
            save(model, rows, vocab, a.out)
    log.close()


def save(model, rows, vocab, out):
    """
    The trained tensors; the embedding as its trained rows (`…wte.embedding@rows` for base ids,
    `…wte.new_embedding@rows` for added ones), lm_head as its trained rows (every other row zero).
    """
    trained = model.named_tensors()
    table = model.emb_rows.detach().numpy()
    is_base = model.rows.numpy() < vocab
    trained[f'{EMBEDDING}@rows'] = table[is_base]
    trained[f'{NEW_EMBEDDING}@rows'] = table[~is_base]
    trained[f'{LM_HEAD}@rows'] = model.head_rows.detach().numpy()
    base = [r for r in rows if r < vocab]
    new = [r - vocab for r in rows if r >= vocab]
    write_safetensors(os.path.join(out, 'trained.tmp'), trained, {'base_rows': json.dumps(base), 'new_rows': json.dumps(new)})
    os.replace(os.path.join(out, 'trained.tmp'), os.path.join(out, 'trained.safetensors'))


if __name__ == '__main__':
    main()
