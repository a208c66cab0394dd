//! Per-ray building blocks of the fused kernel, in f32, each returning its value together with
//! its exact partial derivatives (hand-derived; checked against burn autodiff in the tests).
//!
//! The formulas are the ones of the tensor library (`mass::epl`, `mass::shear`,
//! `light::sersic`), written for one ray.

/// Minimal complex number for the EPL series.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct C {
    /// Real part.
    pub re: f32,
    /// Imaginary part.
    pub im: f32,
}

impl C {
    #[inline(always)]
    pub fn new(re: f32, im: f32) -> Self {
        Self { re, im }
    }
    #[inline(always)]
    pub fn mul(self, o: C) -> C {
        C::new(
            self.re * o.re - self.im * o.im,
            self.re * o.im + self.im * o.re,
        )
    }
    #[inline(always)]
    pub fn add(self, o: C) -> C {
        C::new(self.re + o.re, self.im + o.im)
    }
    #[inline(always)]
    pub fn sub(self, o: C) -> C {
        C::new(self.re - o.re, self.im - o.im)
    }
    #[inline(always)]
    pub fn scale(self, k: f32) -> C {
        C::new(self.re * k, self.im * k)
    }
    /// Multiply by i.
    #[inline(always)]
    pub fn times_i(self) -> C {
        C::new(-self.im, self.re)
    }
}

/// Per-lens constants of the EPL series: the coefficients a_n and their t-derivatives.
#[derive(Clone, Debug)]
pub struct EplCoefficients {
    /// a_0..a_N (a_0 = 1).
    pub a: Vec<f32>,
    /// d a_n / d t.
    pub da: Vec<f32>,
    /// n a_n (coefficients of S'(s) shifted: S' = sum_{n>=1} n a_n s^(n-1)).
    pub na: Vec<f32>,
}

impl EplCoefficients {
    /// Coefficients for slope t = gamma - 1 and `n_terms` terms beyond the leading one
    /// (recursions a_n = a_{n-1} r_n, r_n = (2n-2+t)/(2n+2-t), dr_n/dt = 4n/(2n+2-t)^2, in f64).
    pub fn new(t: f64, n_terms: usize) -> Self {
        let mut a = vec![1.0f64];
        let mut da = vec![0.0f64];
        for n in 1..=n_terms {
            let nf = n as f64;
            let den = 2.0 * nf + 2.0 - t;
            let r = (2.0 * nf - 2.0 + t) / den;
            let dr = 4.0 * nf / (den * den);
            let (ap, dap) = (a[n - 1], da[n - 1]);
            a.push(ap * r);
            da.push(dap * r + ap * dr);
        }
        let na = a
            .iter()
            .enumerate()
            .map(|(n, v)| (n as f64 * v) as f32)
            .collect();
        Self {
            a: a.into_iter().map(|v| v as f32).collect(),
            da: da.into_iter().map(|v| v as f32).collect(),
            na,
        }
    }
}

/// EPL deflection at one ray with its derivatives with respect to
/// (theta_e, gamma, e1, e2, center_x, center_y), each a complex number (d alpha_x + i d alpha_y).
#[derive(Clone, Copy, Debug, Default)]
pub struct EplRay {
    pub alpha: C,
    pub d: [C; 6],
}

/// Per-lens scalars of the EPL (computed once per sample).
#[derive(Clone, Copy, Debug)]
pub struct EplLens {
    pub t: f32,
    pub e1: f32,
    pub e2: f32,
    pub cx: f32,
    pub cy: f32,
    pub inv_theta_e: f32,
    /// ln theta_e + 0.5 ln(1 - |eps|^2)
    pub log_pref: f32,
    /// 1 / (1 - |eps|^2)
    pub inv_d: f32,
}

impl EplLens {
    pub fn new(theta_e: f64, gamma: f64, e1: f64, e2: f64, cx: f64, cy: f64) -> Self {
        let dd = 1.0 - e1 * e1 - e2 * e2;
        Self {
            t: (gamma - 1.0) as f32,
            e1: e1 as f32,
            e2: e2 as f32,
            cx: cx as f32,
            cy: cy as f32,
            inv_theta_e: (1.0 / theta_e) as f32,
            log_pref: (theta_e.ln() + 0.5 * dd.ln()) as f32,
            inv_d: (1.0 / dd) as f32,
        }
    }
}

/// Squared softening of |v| (as `mass::epl::EPS2`, in f32 range).
const EPS2: f32 = 1e-20;

/// Value only (for the forward image).
#[inline]
pub fn epl_value(l: &EplLens, c: &EplCoefficients, x: f32, y: f32) -> C {
    let dx = x - l.cx;
    let dy = y - l.cy;
    let v = C::new((1.0 - l.e1) * dx - l.e2 * dy, (1.0 + l.e1) * dy - l.e2 * dx);
    let r2 = v.re * v.re + v.im * v.im + EPS2;
    let inv_r = 1.0 / r2.sqrt();
    let u = v.scale(inv_r);
    let u2 = u.mul(u);
    let s = C::new(l.e1, -l.e2).mul(u2).scale(-1.0);
    let n = c.a.len() - 1;
    let mut acc = C::new(c.a[n], 0.0);
    for k in (0..n).rev() {
        acc = acc.mul(s);
        acc.re += c.a[k];
    }
    let pref = (l.t * (l.log_pref - 0.5 * r2.ln())).exp();
    v.mul(acc).scale(pref)
}

/// Value and derivatives (see the derivation in `lens/README.md`, "Fused kernel").
#[inline]
pub fn epl_with_grad(l: &EplLens, c: &EplCoefficients, x: f32, y: f32) -> EplRay {
    let dx = x - l.cx;
    let dy = y - l.cy;
    let (e1, e2, t) = (l.e1, l.e2, l.t);
    let v = C::new((1.0 - e1) * dx - e2 * dy, (1.0 + e1) * dy - e2 * dx);
    let r2 = v.re * v.re + v.im * v.im + EPS2;
    let inv_r2 = 1.0 / r2;
    let inv_r = inv_r2.sqrt();
    let u = v.scale(inv_r);
    let u2 = u.mul(u);
    let ebar = C::new(e1, -e2);
    let s = ebar.mul(u2).scale(-1.0);
    // Horner for S, S_t and S' together.
    let n = c.a.len() - 1;
    let mut sv = C::new(c.a[n], 0.0);
    let mut st = C::new(c.da[n], 0.0);
    let mut sp = C::new(c.na[n], 0.0);
    for k in (0..n).rev() {
        sv = sv.mul(s);
        sv.re += c.a[k];
        st = st.mul(s);
        st.re += c.da[k];
        if k >= 1 {
            sp = sp.mul(s);
            sp.re += c.na[k];
        }
    }
    let log_r2 = r2.ln();
    let a_pref = (t * (l.log_pref - 0.5 * log_r2)).exp();
    let vs = v.mul(sv);
    let alpha = vs.scale(a_pref);
    let avsp = v.mul(sp).scale(a_pref); // A v S'
    // d alpha / d v_re and d v_im
    let m2eu = ebar.mul(u).scale(-2.0 * inv_r); // -2 ebar u / |v|
    let ds_re = m2eu.mul(C::new(1.0, 0.0).sub(v.scale(v.re * inv_r2)));
    let ds_im = m2eu.mul(C::new(0.0, 1.0).sub(v.scale(v.im * inv_r2)));
    let a_s = sv.scale(a_pref);
    let d_vre = alpha
        .scale(-t * v.re * inv_r2)
        .add(a_s)
        .add(avsp.mul(ds_re));
    let d_vim = alpha
        .scale(-t * v.im * inv_r2)
        .add(a_s.times_i())
        .add(avsp.mul(ds_im));
    let d_x = d_vre.scale(1.0 - e1).sub(d_vim.scale(e2));
    let d_y = d_vim.scale(1.0 + e1).sub(d_vre.scale(e2));
    let d_theta = alpha.scale(t * l.inv_theta_e);
    let d_t = alpha
        .scale(l.log_pref - 0.5 * log_r2)
        .add(v.mul(st).scale(a_pref));
    let d_e1 = d_vim
        .scale(dy)
        .sub(d_vre.scale(dx))
        .add(alpha.scale(-t * e1 * l.inv_d))
        .sub(avsp.mul(u2));
    let d_e2 = d_vre
        .scale(-dy)
        .sub(d_vim.scale(dx))
        .add(alpha.scale(-t * e2 * l.inv_d))
        .add(avsp.mul(u2.times_i()));
    EplRay {
        alpha,
        d: [d_theta, d_t, d_e1, d_e2, d_x.scale(-1.0), d_y.scale(-1.0)],
    }
}

/// Per-profile scalars of an elliptical Sersic (computed once per sample).
#[derive(Clone, Copy, Debug)]
pub struct SersicProfile {
    pub amp: f32,
    pub inv_n: f32,
    pub bn: f32,
    /// d b_n / d n (0 where b_n is floored)
    pub dbn: f32,
    pub log_r: f32,
    pub inv_r: f32,
    pub e1: f32,
    pub e2: f32,
    pub cx: f32,
    pub cy: f32,
    pub one_plus_c2: f32,
    pub inv_d: f32,
}

impl SersicProfile {
    pub fn new(amp: f64, r: f64, n: f64, e1: f64, e2: f64, cx: f64, cy: f64) -> Self {
        let raw = 1.9992 * n - 0.3271;
        let c2 = e1 * e1 + e2 * e2;
        Self {
            amp: amp as f32,
            inv_n: (1.0 / n) as f32,
            bn: raw.max(1e-5) as f32,
            dbn: if raw > 1e-5 { 1.9992 } else { 0.0 },
            log_r: r.ln() as f32,
            inv_r: (1.0 / r) as f32,
            e1: e1 as f32,
            e2: e2 as f32,
            cx: cx as f32,
            cy: cy as f32,
            one_plus_c2: (1.0 + c2) as f32,
            inv_d: (1.0 / (1.0 - c2)) as f32,
        }
    }
}

/// Floor on R^2 (as `light::sersic::R2_FLOOR`).
const R2_FLOOR: f32 = 1e-10;

#[inline]
fn sersic_r2(p: &SersicProfile, dx: f32, dy: f32) -> (f32, f32, f32) {
    let x2 = dx * dx;
    let y2 = dy * dy;
    let num = p.one_plus_c2 * (x2 + y2) - 2.0 * p.e1 * (x2 - y2) - 4.0 * p.e2 * dx * dy;
    (num * p.inv_d, x2, y2)
}

/// Sersic value only.
#[inline]
pub fn sersic_value(p: &SersicProfile, x: f32, y: f32) -> f32 {
    let (r2, _, _) = sersic_r2(p, x - p.cx, y - p.cy);
    let r2 = r2.max(R2_FLOOR);
    let l = 0.5 * r2.ln() - p.log_r;
    let pw = (l * p.inv_n).exp();
    p.amp * (-p.bn * (pw - 1.0)).exp()
}

/// Sersic value and derivatives with respect to
/// (amp, R_sersic, n_sersic, e1, e2, center_x, center_y); the derivative with respect to the
/// evaluation point (x, y) is minus the centre derivatives.
#[inline]
pub fn sersic_with_grad(p: &SersicProfile, x: f32, y: f32) -> (f32, [f32; 7]) {
    let dx = x - p.cx;
    let dy = y - p.cy;
    let (r2raw, x2, y2) = sersic_r2(p, dx, dy);
    let floored = r2raw < R2_FLOOR;
    let r2 = if floored { R2_FLOOR } else { r2raw };
    let l = 0.5 * r2.ln() - p.log_r;
    let pw = (l * p.inv_n).exp();
    let e = (-p.bn * (pw - 1.0)).exp();
    let i = p.amp * e;
    // dI/dp = -I b_n;  dp/dL = p/n
    let di_dl = -i * p.bn * pw * p.inv_n;
    let d_amp = e;
    let d_r = -di_dl * p.inv_r;
    let d_n = -i * (p.dbn * (pw - 1.0) - p.bn * pw * l * p.inv_n * p.inv_n);
    let (d_e1, d_e2, d_cx, d_cy) = if floored {
        (0.0, 0.0, 0.0, 0.0)
    } else {
        let g = di_dl * 0.5 / r2; // dI/dR^2
        let r2xy = x2 + y2;
        let dr2_dx = (2.0 * p.one_plus_c2 * dx - 4.0 * p.e1 * dx - 4.0 * p.e2 * dy) * p.inv_d;
        let dr2_dy = (2.0 * p.one_plus_c2 * dy + 4.0 * p.e1 * dy - 4.0 * p.e2 * dx) * p.inv_d;
        let dr2_de1 = (2.0 * p.e1 * r2xy - 2.0 * (x2 - y2)) * p.inv_d + 2.0 * p.e1 * r2 * p.inv_d;
        let dr2_de2 = (2.0 * p.e2 * r2xy - 4.0 * dx * dy) * p.inv_d + 2.0 * p.e2 * r2 * p.inv_d;
        (g * dr2_de1, g * dr2_de2, -g * dr2_dx, -g * dr2_dy)
    };
    (i, [d_amp, d_r, d_n, d_e1, d_e2, d_cx, d_cy])
}
