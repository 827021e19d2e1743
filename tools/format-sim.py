#!/usr/bin/env python3
# What a format change would do to zstd, before building it (issue 24,
# docs/performance.md "Session 6"): re-encodes `vtrace dump --json` output
# the way a chunk encoder would, under one scheme, into OUT; then compare
# `zstd -b1 -B1048576 -i3 OUT` of the schemes (speed and ratio).
#
#   vtrace dump TRACE --from A --to B --json > events.jsonl
#   tools/format-sim.py events.jsonl SCHEME OUT
#
# SCHEME: 0 format 1.4 as written (repeat records, addresses as deltas from
# the read or write end); 1 addresses as "the same as / next after access k
# back" (k <= 255); 4 that, plus addresses inside the last chain's buffers,
# chains at the head just read and used publications of the element just
# written (what format 1.5 became); 3 scheme 4 plus "the bytes of the access
# named, plus one" for 2-, 4- and 8-byte values (not built: a decoder would
# have to materialise the bytes); 2 scheme 3 without the chain buffers.
# An estimate: field layouts are close to the format's, not the same bytes.
import json,sys
def varint(v):
    v &= (1<<64)-1; o=bytearray()
    while True:
        b=v&0x7f; v>>=7
        if v: o.append(b|0x80)
        else: o.append(b); return bytes(o)
def zz(d):
    d = ((d + (1<<63)) % (1<<64)) - (1<<63)
    return varint((d<<1) ^ (d>>63))
CN={"tx_packets":0,"tx_bytes":1,"rx_packets":2,"rx_bytes":3}
def run(path, scheme, out):
    o=bytearray()
    table={}   # addr -> (len, bytes, ordinal)
    rend=wend=0; recent=[]; ctr={}; ordn=0
    lastchain={}; chaind=[]; last2=None; lastused=None
    for line in open(path):
        e=json.loads(line); k=e["kind"]
        if k in("mem-read","mem-write"):
            A=e["address"]; L=e["length"]; B=bytes.fromhex(e["bytes"]); rd= k=="mem-read"
            ordn+=1
            t=table.get(A)
            end = rend if rd else wend
            addr = zz(A-end)
            p=None
            if scheme>=1:
                cands=[]
                if t and ordn-t[2]<=255: cands.append((ordn-t[2],0x80))
                q_=table.get(A-L)
                if q_ and q_[0]==L and ordn-q_[2]<=255: cands.append((ordn-q_[2],0x81)); 
                if cands:
                    dist,m=min(cands); addr=bytes([m,dist])
                    p = q_ if m==0x81 else None
                elif scheme>=3:
                    for j,da in enumerate(chaind):
                        if da[0] <= A < da[0]+da[1]:
                            addr=bytes([0x90|j])+zz(A-da[0]); break
            rep = t and t[0]==L and t[1]==B
            if rep:
                o += bytes([0x5f if rd else 0x6f]) + addr
            elif scheme>=2 and scheme!=4 and L in (2,4,8) and (t and t[0]==L or p):
                prev = (t if (t and t[0]==L) else p)[1]
                if int.from_bytes(B,'little') == (int.from_bytes(prev,'little')+1)%(1<<(8*L)):
                    o += bytes([0x8f if rd else 0x9f]) + addr
                else:
                    o += bytes([2 if rd else 3]) + addr + varint(L) + B
            elif not rd and L>=8 and B in [r for r in recent]:
                i=[r for r in recent].index(B)
                o += bytes([3|2<<4|i<<6]) + addr + varint(L)
            else:
                o += bytes([2 if rd else 3]) + addr + varint(L) + B
            if L<=16: table[A]=(L,B,ordn)
            if rd:
                rend=A+L
                if L>=8: recent=[B]+recent[:3]
                if L==2: last2=B
            else:
                wend=A+L
                if L==8: lastused=B
        elif k=="chain":
            d=e["descriptors"]; q=e["queue"]; h=e["head"]; chaind=[(x["addr"],x["len"]) for x in d]
            head = varint(h)
            if scheme>=2 and last2 is not None and int.from_bytes(last2,'little')==h: head=b''
            o += bytes([0x7f if not head==b'' else 0xaf]) + varint(q)+head+varint(len(d))
        elif k=="used":
            if scheme>=2 and lastused and int.from_bytes(lastused[:4],'little')==e["id"] and int.from_bytes(lastused[4:],'little')==e["len"]:
                o += bytes([0xbf])+varint(e["queue"])
            else:
                o += bytes([5])+varint(e["queue"])+varint(e["id"])+varint(e["len"])
        elif k=="counter":
            c=e["counter"]; v=e["value"]; i=CN.get(c,9)
            o += bytes([6|i<<4]) + varint(v-ctr.get(c,v)); ctr[c]=v
        else:
            o += b'\x0c'
    open(out,'wb').write(o)
    print(scheme, len(o), len(o)/ordn)
run(sys.argv[1], int(sys.argv[2]), sys.argv[3])
