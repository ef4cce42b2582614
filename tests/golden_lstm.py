# Independent transcription of tests/golden_lstm.rs reference network (pure Python): python3 tests/golden_lstm.py
import math
sig=lambda x:1/(1+math.exp(-x))
def cell(x,h,c,W,U,bi,bh):
    # gates i,f,g,o ; W: 4 x len(x); U: 4 ; 
    z=[sum(W[k][j]*x[j] for j in range(len(x)))+U[k]*h+bi[k]+bh[k] for k in range(4)]
    i,f,g,o=sig(z[0]),sig(z[1]),math.tanh(z[2]),sig(z[3])
    c=f*c+i*g; h=o*math.tanh(c); return h,c
def bilstm(xs,P):
    out=[[0,0] for _ in xs]
    for d,(W,U,bi,bh) in enumerate(P):
        h=c=0; idx=range(len(xs)) if d==0 else reversed(range(len(xs)))
        for t in idx:
            h,c=cell(xs[t],h,c,W,U,bi,bh); out[t][d]=h
    return out
x=[[0.75],[0.75]]
L1=[([[0.1],[0.2],[0.3],[0.4]],[0.5,-0.6,0.7,-0.8],[0.01,0.02,0.03,0.04],[0.1,0.2,-0.3,0.4]),
    ([[-0.4],[0.3],[-0.2],[0.1]],[-0.5,0.6,-0.7,0.8],[0.05,-0.06,0.07,-0.08],[-0.2,0.1,0.3,0.2])]
y1=bilstm(x,L1)
L2=[([[0.9,-0.8],[0.7,0.6],[-1.5,1.4],[0.3,-0.2]],[1.1,-1.2,1.3,-1.4],[0.1,0.0,0.2,0.0],[0.0,0.3,0.0,-0.1]),
    ([[-0.6,0.5],[0.4,-0.3],[1.2,-1.1],[0.2,0.1]],[0.9,-0.8,-1.7,0.6],[0.0,0.1,-0.1,0.2],[0.3,0.0,0.0,0.0])]
y2=bilstm(y1,L2)
print(y1,y2)
D=[[0.0,0.0],[40.0,0.0]]; b=[0.0,-4.0]
for t in range(2): print([sum(D[k][j]*y2[t][j] for j in range(2))+b[k] for k in range(2)])
