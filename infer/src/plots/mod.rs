//! Figures of a fit: the lens-fit panels of Chianese et al. (2020) Figs. 6-7
//! ([`panels::lens_fit_figure`]), the corner plot of the posterior of Figs. 8-9
//! ([`corner::corner_plot`]) and per-parameter chain traces ([`trace::trace_plot`]).
//!
//! Plain Rust data in, a PNG out (written atomically), drawn with plotters through
//! `arclight_core::plot` (embedded font: no system fonts needed).

pub mod corner;
pub mod panels;
pub mod trace;

pub use arclight_core::plot::{GridOptions, Panel, image_grid};
pub use corner::{CornerOptions, SampleSet, corner_plot, corner_plot_with};
pub use panels::{FitFigureOptions, FitRow, NoiseSigma, lens_fit_figure};
pub use trace::trace_plot;

/// Greek letter for a spelled-out name (`theta` -> `θ`), if it is one.
fn greek(name: &str) -> Option<char> {
    Some(match name {
        "alpha" => 'α',
        "beta" => 'β',
        "gamma" => 'γ',
        "delta" => 'δ',
        "epsilon" => 'ε',
        "eta" => 'η',
        "theta" => 'θ',
        "kappa" => 'κ',
        "lambda" => 'λ',
        "mu" => 'μ',
        "nu" => 'ν',
        "pi" => 'π',
        "rho" => 'ρ',
        "sigma" => 'σ',
        "tau" => 'τ',
        "phi" => 'φ',
        "chi" => 'χ',
        "psi" => 'ψ',
        "omega" => 'ω',
        "Gamma" => 'Γ',
        "Delta" => 'Δ',
        "Theta" => 'Θ',
        "Sigma" => 'Σ',
        "Phi" => 'Φ',
        "Omega" => 'Ω',
        _ => return None,
    })
}

/// Escape the characters that `arclight_core::text::draw_label` treats as markup.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '_' | '^' | '{' | '}' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Typeset a parameter name for axis labels: a spelled-out Greek base becomes the letter,
/// trailing digits of the base and everything after the first `_` become a subscript
/// (further `_` turn into commas): `theta_E` -> θ_E, `gamma1` -> γ_1, `x_src` -> x_src,
/// `e2` -> e_2, `theta_E_lens` -> θ_{E,lens}; a component prefix stays as it is
/// (`lens.theta_E` -> lens.θ_E). The result is label markup (`arclight_core::plot::style::label`).
pub fn pretty_name(name: &str) -> String {
    if let Some((component, param)) = name.rsplit_once('.') {
        return format!("{}.{}", escape(component), pretty_name(param));
    }
    let (base, sub) = match name.split_once('_') {
        Some((b, s)) if !b.is_empty() && !s.is_empty() => (b, s.replace('_', ",")),
        _ => (name, String::new()),
    };
    let digits_at = base.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (stem, digits) = if digits_at > 0 {
        base.split_at(digits_at)
    } else {
        (base, "")
    };
    let stem_txt = greek(stem)
        .map(String::from)
        .unwrap_or_else(|| escape(stem));
    let sub_all: String = match (digits.is_empty(), sub.is_empty()) {
        (true, true) => String::new(),
        (false, true) => digits.to_string(),
        (true, false) => sub,
        (false, false) => format!("{digits},{sub}"),
    };
    if sub_all.is_empty() {
        stem_txt
    } else {
        format!("{stem_txt}_{{{}}}", escape(&sub_all))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_names_are_typeset() {
        assert_eq!(pretty_name("theta_E"), "θ_{E}");
        assert_eq!(pretty_name("gamma"), "γ");
        assert_eq!(pretty_name("gamma1"), "γ_{1}");
        assert_eq!(pretty_name("x_src"), "x_{src}");
        assert_eq!(pretty_name("e2"), "e_{2}");
        assert_eq!(pretty_name("theta_E_lens"), "θ_{E,lens}");
        assert_eq!(pretty_name("z17"), "z_{17}");
        assert_eq!(pretty_name("lens.theta_E"), "lens.θ_{E}");
        assert_eq!(pretty_name("shear.gamma1"), "shear.γ_{1}");
        assert_eq!(pretty_name("_odd"), "\\_odd");
        assert_eq!(pretty_name("a^b"), "a\\^b");
    }
}
