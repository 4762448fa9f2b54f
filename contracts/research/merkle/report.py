import json
def row(d,o):
    tx=int(d[o+".tx"]); fl=int(d[o+".floor"]); c=int(d[o+".count"]); cd=int(d[o+".calldata"])
    return tx,fl,cd,c,max(tx,fl)
for g in ["MerkleGas_events","MerkleGas_light","MerkleGas_bitmap"]:
    d=json.load(open(f"snapshots/{g}.json"))
    ops=sorted({k.rsplit('.',1)[0] for k in d})
    print(g)
    for o in ops:
        tx,fl,cd,c,a=row(d,o)
        print(f"  {o:40s} tx={tx:>9,} floor={fl:>9,} calldata={cd:>8,} exec={tx-21000-cd:>9,} allin={a:>9,} per={a/c:>9,.0f} {'FLOOR BINDS' if fl>tx else ''}")
