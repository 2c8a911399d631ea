"""Completes package-lock.json with the optional platform packages a registry mirror did not serve.

A registry that serves only this platform's builds (rollup's, esbuild's, ...)
makes `npm install` leave the other platforms' optional packages out of the
lock, and `npm ci` then refuses that lock as out of sync. Each missing optional
dependency gets an entry with its exact version, marked optional: `npm ci`
skips it on platforms it does not fit, as it would with a full lock.

Usage: python3 .ci/complete-lock.py package-lock.json
"""
import json, sys
p = sys.argv[1]
lock = json.load(open(p))
pk = lock['packages']
added = 0
for path, meta in list(pk.items()):
    for name, ver in (meta.get('optionalDependencies') or {}).items():
        # resolution: nested under the parent's node_modules first, then hoisted
        base = path + '/node_modules/' + name if path else 'node_modules/' + name
        if base in pk or ('node_modules/' + name) in pk:
            continue
        entry = {'version': ver, 'optional': True}
        if meta.get('dev'): entry['dev'] = True
        pk['node_modules/' + name] = entry
        added += 1
lock['packages'] = dict(sorted(pk.items(), key=lambda kv: (kv[0] != '', kv[0])))
json.dump(lock, open(p, 'w'), indent=2)
open(p, 'a').write('\n')
print('added', added)
