"""Molmo2's forward pass in PyTorch, on a checkpoint in the Hugging Face layout, for training the demo model.

It follows src/molmo2/reference (the project's fp32 reference, itself checked against the official HF
remote code): SigLIP-style ViT with the blocks `adapter_config.vit_layers` lists concatenated, masked
attention pooling over each token's window, SwiGLU projector, image features *added* to the <im_patch>
embeddings, a Qwen3-style decoder (RMSNorm, QK-norm, rotate-half RoPE) under Molmo2's prefill mask
(causal, or both tokens image-special). Parameters keep the checkpoint's tensor names, so training
writes back a checkpoint the project's converter reads like any other. train.py checks this module
against the reference's logits before it trains.
"""
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

VIT = 'model.vision_backbone.image_vit'
POOL = 'model.vision_backbone.image_pooling_2d'
PROJ = 'model.vision_backbone.image_projector'
LLM = 'model.transformer'
EMBEDDING = f'{LLM}.wte.embedding'
NEW_EMBEDDING = f'{LLM}.wte.new_embedding'
LM_HEAD = 'lm_head.weight'
POSITIONAL_EMBEDDING = f'{VIT}.positional_embedding'

# Token ids that are image-special (token_type 1) are given by the sample stream, not derived here.


def read_safetensors(path):
    """{name: float32 numpy array} of one .safetensors file (F32, F16 or BF16)."""
    return read_safetensors_f(path)[0]


def read_safetensors_f(path):
    """({name: float32 numpy array}, metadata) of one .safetensors file (F32, F16 or BF16)."""
    with open(path, 'rb') as f:
        header_len = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(header_len))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        start, end = info['data_offsets']
        raw = data[start:end]
        if info['dtype'] == 'F32':
            arr = np.frombuffer(raw, dtype='<f4')
        elif info['dtype'] == 'F16':
            arr = np.frombuffer(raw, dtype='<f2').astype(np.float32)
        elif info['dtype'] == 'BF16':
            arr = (np.frombuffer(raw, dtype='<u2').astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError(f'{path}: tensor {name} has dtype {info["dtype"]}; expected F32 or BF16')
        out[name] = arr.reshape(info['shape']).copy()
    return out, header.get('__metadata__', {})


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: float32 numpy array} as one F32 .safetensors file (names sorted)."""
    header = {}
    offset = 0
    names = sorted(tensors)
    for name in names:
        n = tensors[name].size * 4
        header[name] = {'dtype': 'F32', 'shape': list(tensors[name].shape), 'data_offsets': [offset, offset + n]}
        offset += n
    if metadata:
        header['__metadata__'] = {k: str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * ((8 - len(text) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for name in names:
            f.write(np.ascontiguousarray(tensors[name], dtype='<f4').tobytes())


def read_checkpoint(folder):
    """(config dict, {name: float32 array}) of a checkpoint folder (sharded via the index, or one file)."""
    with open(os.path.join(folder, 'config.json')) as f:
        config = json.load(f)
    index_path = os.path.join(folder, 'model.safetensors.index.json')
    if os.path.exists(index_path):
        with open(index_path) as f:
            files = sorted(set(json.load(f)['weight_map'].values()))
    else:
        files = ['model.safetensors']
    tensors = {}
    for file in files:
        tensors.update(read_safetensors(os.path.join(folder, file)))
    return config, tensors


def rms_norm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rotate_half_rope(x, cos, sin):
    """x [S, heads, D]; cos/sin [S, D/2]. Element i pairs with i + D/2 (HF convention)."""
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    c, s = cos[:, None, :], sin[:, None, :]
    return torch.cat([a * c - b * s, b * c + a * s], dim=-1)


class Molmo2Torch(torch.nn.Module):
    def __init__(self, config, tensors):
        super().__init__()
        self.config = config
        vit, adapter, text = config['vit_config'], config['adapter_config'], config['text_config']
        self.vit_heads, self.vit_head_dim, self.vit_eps = vit['num_attention_heads'], vit['head_dim'], vit['layer_norm_eps']
        declared = vit['num_hidden_layers']
        self.vit_layers = [l if l >= 0 else declared + l for l in adapter['vit_layers']]
        self.vit_blocks = max(self.vit_layers) + 1
        self.pool_heads, self.pool_head_dim = adapter['num_attention_heads'], adapter['head_dim']
        self.pool_mask = adapter['pooling_attention_mask']
        self.heads, self.kv_heads, self.head_dim = text['num_attention_heads'], text['num_key_value_heads'], text['head_dim']
        self.layers, self.intermediate, self.eps = text['num_hidden_layers'], text['intermediate_size'], text['layer_norm_eps']
        self.rope_theta, self.qkv_bias = text['rope_theta'], text['qkv_bias']
        self.vocab = text['vocab_size']
        # Names with dots cannot be module attributes: keep them in a ParameterDict under escaped keys.
        self.params = torch.nn.ParameterDict({k.replace('.', '__'): torch.nn.Parameter(torch.from_numpy(v)) for k, v in tensors.items()})

    def p(self, name):
        return self.params[name.replace('.', '__')]

    def compact_vocabulary(self, rows):
        """
        Keeps only `rows` (token ids, base and added) of the embedding, and their base-vocabulary rows of
        lm_head, as trainable tables; every other lm_head row is taken to be zero, as the demo checkpoint
        stores it. The softmax over the whole vocabulary is then exact and cheap: the V − R zero logits
        add one term, log(V − R), to the log-sum-exp (see `answer_loss`).
        """
        rows = sorted(set(rows))
        table = torch.cat([self.p(EMBEDDING), self.p(NEW_EMBEDDING)], dim=0).detach()
        self.rows = torch.tensor(rows, dtype=torch.long)
        self.base_rows = torch.tensor([r for r in rows if r < self.vocab], dtype=torch.long)
        self.row_of = torch.full((table.shape[0],), -1, dtype=torch.long)
        self.row_of[self.rows] = torch.arange(len(rows))
        self.head_col_of = torch.full((self.vocab,), -1, dtype=torch.long)
        self.head_col_of[self.base_rows] = torch.arange(len(self.base_rows))
        self.emb_rows = torch.nn.Parameter(table[self.rows].clone())
        self.head_rows = torch.nn.Parameter(self.p(LM_HEAD).detach()[self.base_rows].clone())
        for name in (EMBEDDING, NEW_EMBEDDING, LM_HEAD):
            del self.params[name.replace('.', '__')]
        self.compact = True

    def answer_loss(self, hidden, targets):
        """Cross-entropy of `targets` over the whole vocabulary (compact form: untrained lm_head rows are zero)."""
        cols = self.head_col_of[targets]
        if bool((cols < 0).any()):
            raise ValueError('an answer token is outside the trained rows')
        logits = F.linear(hidden, self.head_rows)
        return self.token_losses(logits, cols).mean(), logits, cols

    def token_losses(self, logits, cols):
        """Per-row cross-entropy of compact `logits` [n, R] at trained-row columns `cols` [n] (see answer_loss)."""
        zeros = math.log(self.vocab - len(self.base_rows))
        lse = torch.logsumexp(torch.cat([logits, torch.full_like(logits[:, :1], zeros)], dim=1), dim=1)
        return lse - logits.gather(1, cols[:, None])[:, 0]

    def named_tensors(self):
        """{checkpoint name: float32 numpy array} of the current values (without the compact tables)."""
        return {k.replace('__', '.'): v.detach().cpu().numpy().astype(np.float32) for k, v in self.params.items()}

    # ---- vision ----
    def vit_features(self, pixel_values):
        """pixel_values [crops, patches, patch_dim] → [crops·patches, len(vit_layers)·hidden]."""
        x = F.linear(pixel_values, self.p(f'{VIT}.patch_embedding.weight'), self.p(f'{VIT}.patch_embedding.bias'))
        x = x + self.p(f'{VIT}.positional_embedding')
        crops, n, d = x.shape
        hidden = []
        for i in range(self.vit_blocks):
            b = f'{VIT}.transformer.resblocks.{i}'
            h = F.layer_norm(x, (d,), self.p(f'{b}.attention_norm.weight'), self.p(f'{b}.attention_norm.bias'), self.vit_eps)
            q, k, v = (
                F.linear(h, self.p(f'{b}.attention.{w}.weight'), self.p(f'{b}.attention.{w}.bias'))
                .view(crops, n, self.vit_heads, self.vit_head_dim)
                .transpose(1, 2)
                for w in ('wq', 'wk', 'wv')
            )
            # Scaling q rather than the [crops, heads, n, n] scores: the same product, far less memory traffic.
            att = torch.softmax((q / math.sqrt(self.vit_head_dim)) @ k.transpose(-1, -2), dim=-1) @ v
            att = att.transpose(1, 2).reshape(crops, n, self.vit_heads * self.vit_head_dim)
            x = x + F.linear(att, self.p(f'{b}.attention.wo.weight'), self.p(f'{b}.attention.wo.bias'))
            h = F.layer_norm(x, (d,), self.p(f'{b}.ffn_norm.weight'), self.p(f'{b}.ffn_norm.bias'), self.vit_eps)
            f = F.gelu(F.linear(h, self.p(f'{b}.feed_forward.w1.weight'), self.p(f'{b}.feed_forward.w1.bias')), approximate='tanh')
            x = x + F.linear(f, self.p(f'{b}.feed_forward.w2.weight'), self.p(f'{b}.feed_forward.w2.bias'))
            hidden.append(x)
        feats = torch.cat([hidden[l] for l in self.vit_layers], dim=-1)
        return feats.reshape(crops * n, -1)

    def pool_and_project(self, features, pooled_idx):
        """features [rows, in]; pooled_idx [T, P] (−1 = padding) → [T', text hidden] (rows with no valid slot dropped)."""
        valid = pooled_idx >= 0
        keep = valid.any(dim=1)
        pooled_idx, valid = pooled_idx[keep], valid[keep]
        window = features[pooled_idx.clamp(min=0)] * valid[..., None]  # [T, P, in]
        count = valid.sum(dim=1, keepdim=True).clamp(min=1) if self.pool_mask else torch.full_like(valid[:, :1], valid.shape[1], dtype=torch.long)
        query = window.sum(dim=1) / count  # [T, in]
        H, D = self.pool_heads, self.pool_head_dim
        T, P = pooled_idx.shape
        q = F.linear(query, self.p(f'{POOL}.wq.weight'), self.p(f'{POOL}.wq.bias')).view(T, H, 1, D)
        k = F.linear(window, self.p(f'{POOL}.wk.weight'), self.p(f'{POOL}.wk.bias')).view(T, P, H, D).transpose(1, 2)
        v = F.linear(window, self.p(f'{POOL}.wv.weight'), self.p(f'{POOL}.wv.bias')).view(T, P, H, D).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(D)  # [T, H, 1, P]
        if self.pool_mask:
            scores = scores.masked_fill(~valid[:, None, None, :], float('-inf'))
        att = (torch.softmax(scores, dim=-1) @ v).reshape(T, H * D)
        attended = F.linear(att, self.p(f'{POOL}.wo.weight'), self.p(f'{POOL}.wo.bias'))
        gate = F.linear(attended, self.p(f'{PROJ}.w1.weight'))
        up = F.linear(attended, self.p(f'{PROJ}.w3.weight'))
        return F.linear(F.silu(gate) * up, self.p(f'{PROJ}.w2.weight'))

    # ---- decoder ----
    def rope(self, n):
        D = self.head_dim
        inv_freq = 1.0 / (self.rope_theta ** (torch.arange(0, D, 2, dtype=torch.float64) / D)).float()
        angle = torch.arange(n, dtype=torch.float32)[:, None] * inv_freq[None, :]
        return torch.cos(angle), torch.sin(angle)

    def embed(self, input_ids, image_features, image_patch_id):
        if getattr(self, 'compact', False):
            idx = self.row_of[input_ids]
            if bool((idx < 0).any()):
                raise ValueError('a prompt token is outside the trained rows')
            x = self.emb_rows[idx]
        else:
            x = torch.cat([self.p(EMBEDDING), self.p(NEW_EMBEDDING)], dim=0)[input_ids]
        is_patch = input_ids == image_patch_id
        if int(is_patch.sum()) != image_features.shape[0]:
            raise ValueError(f'{int(is_patch.sum())} <im_patch> tokens but {image_features.shape[0]} image feature rows')
        return x.index_put((is_patch.nonzero(as_tuple=True)[0],), image_features, accumulate=True)

    def decoder_hidden(self, x, token_type_ids, watch=()):
        """
        x [S, d] embeddings; token_type_ids [S] (1 = image-special) → final-norm hidden states [S, d].
        With `watch` (layer indices): also {layer: (attention probabilities [S, S] of its head 0, the
        values [S, head_dim] it reads)}, for train.py's training-only attention loss and position probe.
        """
        watched = {}
        S = x.shape[0]
        H, Hkv, D, I = self.heads, self.kv_heads, self.head_dim, self.intermediate
        causal = torch.ones(S, S, dtype=torch.bool).tril()
        image = token_type_ids.bool()
        allowed = causal | (image[:, None] & image[None, :])
        bias = torch.zeros(S, S).masked_fill(~allowed, float('-inf'))
        cos, sin = self.rope(S)
        for i in range(self.layers):
            b = f'{LLM}.blocks.{i}'
            h = rms_norm(x, self.p(f'{b}.attn_norm.weight'), self.eps)
            qkv = F.linear(h, self.p(f'{b}.self_attn.att_proj.weight'), self.p(f'{b}.self_attn.att_proj.bias') if self.qkv_bias else None)
            q = rms_norm(qkv[:, : H * D].view(S, H, D), self.p(f'{b}.self_attn.q_norm.weight'), self.eps)
            k = rms_norm(qkv[:, H * D : (H + Hkv) * D].view(S, Hkv, D), self.p(f'{b}.self_attn.k_norm.weight'), self.eps)
            v = qkv[:, (H + Hkv) * D :].view(S, Hkv, D)
            q, k = rotate_half_rope(q, cos, sin), rotate_half_rope(k, cos, sin)
            rep = H // Hkv
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
            scores = torch.einsum('qhd,khd->hqk', q / math.sqrt(D), k) + bias
            probs = torch.softmax(scores, dim=-1)
            if i in watch:
                watched[i] = (probs[0], v[:, 0])
            att = torch.einsum('hqk,khd->qhd', probs, v).reshape(S, H * D)
            x = x + F.linear(att, self.p(f'{b}.self_attn.attn_out.weight'))
            f = F.linear(rms_norm(x, self.p(f'{b}.ff_norm.weight'), self.eps), self.p(f'{b}.mlp.ff_proj.weight'))
            # ff_proj's first half is "up", the second the gate: ff_out(silu(gate) · up).
            x = x + F.linear(F.silu(f[:, I:]) * f[:, :I], self.p(f'{b}.mlp.ff_out.weight'))
        out = rms_norm(x, self.p(f'{LLM}.ln_f.weight'), self.eps)
        return (out, watched) if watch else out

    def image_features(self, pixel_values, pooled_idx):
        """
        [T, d] features of the <im_patch> tokens. Crops with identical pixels (a 378-px image's global
        view and its single high-res crop are the same picture) go through the ViT once.
        """
        unique, which = [], []
        for crop in pixel_values:
            same = next((i for i, u in enumerate(unique) if torch.equal(u, crop)), None)
            if same is None:
                unique.append(crop)
                same = len(unique) - 1
            which.append(same)
        per_crop = self.vit_features(torch.stack(unique)).view(len(unique), pixel_values.shape[1], -1)
        return self.pool_and_project(per_crop[torch.tensor(which)].reshape(-1, per_crop.shape[-1]), pooled_idx)

    def forward(self, input_ids, token_type_ids, image_features, image_patch_id, watch=()):
        """Final hidden states [S, d] of a whole prompt (+ answer) under the prefill mask (and the watched attention, see decoder_hidden)."""
        return self.decoder_hidden(self.embed(input_ids, image_features, image_patch_id), token_type_ids, watch)

    def logits(self, hidden):
        return F.linear(hidden, self.p(LM_HEAD))
