import json, sys
base = json.load(open(sys.argv[1] if len(sys.argv) > 1 else 'tokenizer.json'))
def apply(base, patch):
    out = json.loads(json.dumps(base))
    for k, v in patch.get('set', {}).items(): out[k] = v
    for k, v in patch.get('set_model', {}).items(): out['model'][k] = v
    if patch.get('merges_as_pairs'): out['model']['merges'] = [m.split(' ', 1) for m in out['model']['merges']]
    return out
for v in 'ab':
    var = json.load(open(f'variant_{v}.json'))
    patch = {'set': {}, 'set_model': {}}
    for k in var:
        if k != 'model' and var[k] != base.get(k): patch['set'][k] = var[k]
    for k in var['model']:
        if k == 'merges': continue
        if var['model'][k] != base['model'].get(k): patch['set_model'][k] = var['model'][k]
    if var['model']['merges'] != base['model']['merges']:
        patch['merges_as_pairs'] = True
    assert apply(base, patch) == var, v
    json.dump(patch, open(f'variant_{v}.patch.json', 'w'), indent=1, ensure_ascii=True)
    print(v, list(patch['set']), list(patch['set_model']), patch.get('merges_as_pairs'))
