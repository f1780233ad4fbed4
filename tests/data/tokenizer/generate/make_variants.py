import copy, json, sys
base = json.load(open(sys.argv[1] if len(sys.argv) > 1 else 'tokenizer.json'))
def tok(content, id, **kw):
    d = dict(id=id, content=content, single_word=False, lstrip=False, rstrip=False, normalized=True, special=False)
    d.update(kw); return d

# A: pair-form merges, NFKC via Sequence, prefix space, added-token options, template.
a = copy.deepcopy(base)
a['model']['merges'] = [m.split(' ', 1) for m in a['model']['merges']]
a['normalizer'] = {'type': 'Sequence', 'normalizers': [{'type': 'NFD'}, {'type': 'NFKC'}]}
a['pre_tokenizer']['add_prefix_space'] = True
a['added_tokens'] += [
    tok('[MASK]', 50277, lstrip=True, special=True, normalized=False),
    tok('<tag>', 50278, rstrip=True),
    tok('word', 50279, single_word=True),
    tok('ab', 50280, single_word=True, normalized=False),
    tok('\ufb01x', 50281),             # normalized form is "fix"
    tok('hello', 99999),               # in the model vocab: keeps the model id
    tok('[BOTH]', 12345, lstrip=True, rstrip=True, special=True, normalized=False),
    tok('caf\u00e9', 50283, normalized=False),
]
a['post_processor'] = {'type': 'TemplateProcessing',
    'single': [{'SpecialToken': {'id': '<|endoftext|>', 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}}, {'SpecialToken': {'id': '[MASK]', 'type_id': 0}}],
    'pair': [{'Sequence': {'id': 'A', 'type_id': 0}}, {'Sequence': {'id': 'B', 'type_id': 1}}],
    'special_tokens': {'<|endoftext|>': {'id': '<|endoftext|>', 'ids': [0], 'tokens': ['<|endoftext|>']},
                       '[MASK]': {'id': '[MASK]', 'ids': [50277], 'tokens': ['[MASK]']}}}
json.dump(a, open('variant_a.json', 'w'), ensure_ascii=False)

# B: ignore_merges, no regex split, no normalizer.
b = copy.deepcopy(base)
b['model']['ignore_merges'] = True
b['normalizer'] = None
b['pre_tokenizer'] = {'type': 'Sequence', 'pretokenizers': [{'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True, 'use_regex': False}]}
b['post_processor'] = {'type': 'Sequence', 'processors': [{'type': 'ByteLevel', 'trim_offsets': True}, {'type': 'BertProcessing', 'sep': ['<|padding|>', 1], 'cls': ['<|endoftext|>', 0]}]}
json.dump(b, open('variant_b.json', 'w'), ensure_ascii=False)

# C: a small word-piece style BPE with continuing_subword_prefix, unk and no decoder.
letters = 'abcdeĠ'
vocab = {'[UNK]': 0}
for ch in letters: vocab[ch] = len(vocab)
for ch in letters: vocab['##' + ch] = len(vocab)
merges = [('a', '##b'), ('ab', '##c'), ('c', '##d'), ('##d', '##e'), ('Ġ', '##a'), ('d', '##e'), ('##c', '##d'), ('Ġa', '##b')]
for l, r in merges:
    vocab.setdefault(l + r[2:], len(vocab))
c = {'version': '1.0', 'truncation': None, 'padding': None,
     'added_tokens': [tok('[UNK]', 0, special=True, normalized=False), tok('<x>', 77, normalized=False)],
     'normalizer': None,
     'pre_tokenizer': {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True, 'use_regex': True},
     'post_processor': None, 'decoder': None,
     'model': {'type': 'BPE', 'dropout': None, 'unk_token': '[UNK]', 'continuing_subword_prefix': '##',
               'end_of_word_suffix': None, 'fuse_unk': True, 'byte_fallback': False,
               'vocab': vocab, 'merges': [l + ' ' + r for l, r in merges]}}
json.dump(c, open('variant_c.json', 'w'), ensure_ascii=False)

# D: end_of_word_suffix, byte_fallback, unk without fusing, ByteLevel decoder.
vocab = {'<unk>': 0}
for ch in 'abcdĠ': vocab[ch] = len(vocab)
for ch in 'abcdĠ': vocab[ch + '</w>'] = len(vocab)
for byte in range(256): vocab['<0x%02X>' % byte] = len(vocab)
del vocab['<0x7A>']  # "z" cannot fall back to bytes, so it becomes <unk>
merges = [('a', 'b'), ('ab', 'c</w>'), ('c', 'd</w>'), ('Ġ', 'a'), ('Ġa', 'b</w>'), ('b', 'b')]
for l, r in merges: vocab.setdefault(l + r, len(vocab))
d = {'version': '1.0', 'truncation': None, 'padding': None, 'added_tokens': [],
     'normalizer': {'type': 'NFC'},
     'pre_tokenizer': {'type': 'ByteLevel', 'add_prefix_space': True, 'trim_offsets': True},
     'post_processor': {'type': 'RobertaProcessing', 'sep': ['b', 2], 'cls': ['a', 1], 'trim_offsets': True, 'add_prefix_space': True},
     'decoder': {'type': 'ByteLevel'},
     'model': {'type': 'BPE', 'dropout': None, 'unk_token': '<unk>', 'continuing_subword_prefix': None,
               'end_of_word_suffix': '</w>', 'fuse_unk': False, 'byte_fallback': True,
               'vocab': vocab, 'merges': [[l, r] for l, r in merges]}}
json.dump(d, open('variant_d.json', 'w'), ensure_ascii=False)
