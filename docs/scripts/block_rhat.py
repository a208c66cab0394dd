"""Rank-normalised split R-hat (Vehtari et al. 2021) of a fit's samples.h5 over windows of the draws, and
one parameter's chain means per 600-draw block: is a high R-hat a transient or slow mixing?

usage: python block_rhat.py RUN/artifacts/samples.h5 [PARAM]   (numpy, scipy, h5py)
"""
import h5py, numpy as np, sys
from scipy.stats import rankdata, norm
def split(x):
    n=x.shape[1]//2
    return np.concatenate([x[:,:n],x[:,n:2*n]],0)
def rhat_basic(x):
    m,n=x.shape
    W=x.var(1,ddof=1).mean(); B=n*x.mean(1).var(ddof=1)
    return np.sqrt(((n-1)/n*W+B/n)/W)
def z(x):
    r=rankdata(x.ravel()).reshape(x.shape)
    return norm.ppf((r-0.375)/(x.size+0.25))
def rhat(x):
    s=split(x)
    return max(rhat_basic(z(s)), rhat_basic(z(np.abs(s-np.median(s)))))
f=h5py.File(sys.argv[1],'r')
names=[k for k in f if '.' in k]
for lo,hi in [(0,None),(600,None),(1200,None),(0,600),(0,1200)]:
    rs={k:rhat(f[k][:,lo:hi]) for k in names}
    w=max(rs,key=rs.get)
    print(lo,hi,w,round(rs[w],4))
k=sys.argv[2] if len(sys.argv)>2 else 'shear.gamma2'
x=f[k][:]
print(k,'chain means per 600 block:')
print(np.round(x.reshape(8,-1,600).mean(2),3))
