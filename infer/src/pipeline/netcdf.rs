//! netCDF-4 files written through the HDF5 library alone (no netCDF C library), as netCDF-C,
//! netCDF4-python and h5netcdf (hence xarray and ArviZ) read them.
//!
//! netCDF-4 keeps a dimension as an HDF5 dimension scale (HDF5 Dimension Scale specification; its H5DS
//! API lives in HDF5's high-level library, which hdf5-metno does not bind, so the attributes are
//! written here as H5DS writes them): the coordinate variable of the dimension is a 1-D dataset with
//! `CLASS = "DIMENSION_SCALE"` and `NAME` (fixed-length, null-terminated ASCII strings),
//! `REFERENCE_LIST` (one `{dataset, dimension}` entry per variable axis it labels) and netCDF's
//! `_Netcdf4Dimid` (unique in the file); a variable lists its scales in `DIMENSION_LIST`, one list of
//! object references per axis. The root carries `_NCProperties`, the provenance line netCDF-C writes.
//! Links and attributes keep their creation order (netCDF-C's own files do), so readers list variables
//! in the order they were written. Every dimension here has a coordinate variable.

use anyhow::{Context, Result, bail, ensure};
use hdf5::plist::file_create::{AttrCreationOrder, LinkCreationOrder};
use hdf5::types::{VarLenArray, VarLenUnicode};
use hdf5::{Dataset, File, Group, H5Type, Location, ObjectReference1};
use std::ffi::CString;
use std::path::Path;

/// One `REFERENCE_LIST` entry of a dimension scale: a variable and which of its axes the scale labels
/// (the compound type of H5DS: members `dataset` and `dimension`).
#[derive(H5Type, Clone, Copy, Debug)]
#[repr(C)]
pub struct ScaleReference {
    pub dataset: ObjectReference1,
    pub dimension: u32,
}

/// An open netCDF-4 file being written; groups are added with [`NcFile::group`].
pub struct NcFile {
    file: File,
    next_dimid: i32,
}

impl NcFile {
    /// Creates (truncates) `path` and writes the root's `_NCProperties`; `writer` names the program
    /// (`arclight=0.1.0`).
    pub fn create(path: &Path, writer: &str) -> Result<NcFile> {
        let file = File::with_options()
            .with_fcpl(|p| {
                p.link_creation_order(LinkCreationOrder::Indexed)
                    .attr_creation_order(AttrCreationOrder::Indexed)
            })
            .create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let v = hdf5::library_version();
        fixed_string_attr(
            &file,
            "_NCProperties",
            &format!("version=2,{writer},hdf5={}.{}.{}", v.0, v.1, v.2),
        )?;
        Ok(NcFile {
            file,
            next_dimid: 0,
        })
    }

    /// The root group, for attributes (and variables) of the whole file.
    pub fn root(&mut self) -> NcGroup<'_> {
        let group = (*self.file).clone();
        NcGroup::new(group, &mut self.next_dimid)
    }

    /// A new child group of the root.
    pub fn group(&mut self, name: &str) -> Result<NcGroup<'_>> {
        let group = self
            .file
            .create_group_builder()
            .with_gcpl(|p| {
                p.link_creation_order(LinkCreationOrder::Indexed)
                    .attr_creation_order(AttrCreationOrder::Indexed)
            })
            .create(name)
            .with_context(|| format!("cannot create group {name:?}"))?;
        Ok(NcGroup::new(group, &mut self.next_dimid))
    }

    /// Flushes and closes the file.
    pub fn close(self) -> Result<()> {
        self.file.flush()?;
        self.file.close()?;
        Ok(())
    }
}

/// A dimension of a group: its coordinate variable (the scale) and the variable axes it labels.
struct Dimension {
    name: String,
    len: usize,
    scale: Dataset,
    users: Vec<ScaleReference>,
}

/// A group being written: dimensions first, then variables on them; [`NcGroup::finish`] writes the
/// back references of the dimensions.
pub struct NcGroup<'f> {
    group: Group,
    next_dimid: &'f mut i32,
    dims: Vec<Dimension>,
}

impl<'f> NcGroup<'f> {
    fn new(group: Group, next_dimid: &'f mut i32) -> Self {
        NcGroup {
            group,
            next_dimid,
            dims: Vec::new(),
        }
    }

    /// A dimension of `coords.len()` with its coordinate variable (the integer labels `coords`).
    pub fn dimension(&mut self, name: &str, coords: &[i64]) -> Result<()> {
        ensure!(
            !self.dims.iter().any(|d| d.name == name),
            "netCDF: dimension {name:?} defined twice"
        );
        let scale = self
            .group
            .new_dataset::<i64>()
            .shape([coords.len()])
            .attr_creation_order(AttrCreationOrder::Indexed)
            .create(name)
            .with_context(|| format!("cannot create dimension {name:?}"))?;
        scale.write_raw(coords)?;
        fixed_string_attr(&scale, "CLASS", "DIMENSION_SCALE")?;
        fixed_string_attr(&scale, "NAME", name)?;
        scale
            .new_attr::<i32>()
            .create("_Netcdf4Dimid")?
            .write_scalar(&*self.next_dimid)?;
        *self.next_dimid += 1;
        self.dims.push(Dimension {
            name: name.to_string(),
            len: coords.len(),
            scale,
            users: Vec::new(),
        });
        Ok(())
    }

    /// A variable on the named dimensions (row-major data, the last dimension fastest).
    pub fn variable<T: H5Type>(
        &mut self,
        name: &str,
        dims: &[&str],
        data: &[T],
    ) -> Result<Dataset> {
        let idx: Vec<usize> = dims
            .iter()
            .map(|d| {
                self.dims
                    .iter()
                    .position(|x| x.name == *d)
                    .with_context(|| format!("netCDF variable {name:?}: no dimension {d:?}"))
            })
            .collect::<Result<_>>()?;
        let shape: Vec<usize> = idx.iter().map(|&i| self.dims[i].len).collect();
        let n: usize = shape.iter().product();
        if data.len() != n {
            bail!(
                "netCDF variable {name:?}: {} values for the shape {shape:?} ({n} values)",
                data.len()
            );
        }
        let ds = self
            .group
            .new_dataset::<T>()
            .shape(shape)
            .attr_creation_order(AttrCreationOrder::Indexed)
            .create(name)
            .with_context(|| format!("cannot create variable {name:?}"))?;
        ds.write_raw(data)?;
        let me: ObjectReference1 = self.group.reference(name)?;
        let mut lists = Vec::with_capacity(idx.len());
        for (axis, &i) in idx.iter().enumerate() {
            let scale: ObjectReference1 = self.group.reference(&self.dims[i].name)?;
            lists.push(VarLenArray::from(&[scale][..]));
            self.dims[i].users.push(ScaleReference {
                dataset: me,
                dimension: axis as u32,
            });
        }
        ds.new_attr::<VarLenArray<ObjectReference1>>()
            .shape([lists.len()])
            .create("DIMENSION_LIST")?
            .write_raw(&lists)?;
        Ok(ds)
    }

    /// A boolean variable, stored as xarray stores one: int8 with the attribute `dtype = "bool"`.
    pub fn bool_variable(&mut self, name: &str, dims: &[&str], data: &[bool]) -> Result<Dataset> {
        let bytes: Vec<i8> = data.iter().map(|&b| b as i8).collect();
        let ds = self.variable(name, dims, &bytes)?;
        string_attr(&ds, "dtype", "bool")?;
        Ok(ds)
    }

    /// A text attribute of the group.
    pub fn attr(&self, name: &str, value: &str) -> Result<()> {
        string_attr(&self.group, name, value)
    }

    /// Writes each dimension's `REFERENCE_LIST` (the variables that use it).
    pub fn finish(self) -> Result<()> {
        for d in &self.dims {
            if d.users.is_empty() {
                continue;
            }
            d.scale
                .new_attr::<ScaleReference>()
                .shape([d.users.len()])
                .create("REFERENCE_LIST")?
                .write_raw(&d.users)?;
        }
        Ok(())
    }
}

/// A text attribute as xarray writes one: a variable-length UTF-8 string.
pub fn string_attr(loc: &Location, name: &str, value: &str) -> Result<()> {
    let v: VarLenUnicode = value
        .parse()
        .map_err(|e| anyhow::anyhow!("attribute {name:?}: {e:?}"))?;
    loc.new_attr::<VarLenUnicode>()
        .create(name)
        .with_context(|| format!("cannot create attribute {name:?}"))?
        .write_scalar(&v)?;
    Ok(())
}

/// A scalar fixed-length, null-terminated ASCII string attribute: the form H5DS checks for `CLASS`
/// (hdf5-metno writes fixed-length strings null-padded, which H5DS does not accept as a scale).
fn fixed_string_attr(loc: &Location, name: &str, value: &str) -> Result<()> {
    use hdf5_sys::{h5a, h5p::H5P_DEFAULT, h5s, h5t};
    let cname = CString::new(name)?;
    let cvalue = CString::new(value)
        .with_context(|| format!("attribute {name:?}: the value contains a NUL byte"))?;
    ensure!(
        value.is_ascii(),
        "attribute {name:?}: {value:?} is not ASCII"
    );
    let bytes = cvalue.as_bytes_with_nul();
    let id = loc.id();
    // SAFETY: plain HDF5 C calls on valid ids, under hdf5-metno's global library lock; every id opened
    // here is closed here, and the buffer holds exactly the type's size.
    let ok = hdf5::sync::sync(|| unsafe {
        let t = h5t::H5Tcopy(*h5t::H5T_C_S1);
        if t < 0 {
            return false;
        }
        let mut ok = h5t::H5Tset_size(t, bytes.len()) >= 0
            && h5t::H5Tset_strpad(t, h5t::H5T_str_t::H5T_STR_NULLTERM) >= 0
            && h5t::H5Tset_cset(t, h5t::H5T_cset_t::H5T_CSET_ASCII) >= 0;
        let s = h5s::H5Screate(h5s::H5S_class_t::H5S_SCALAR);
        let a = if ok && s >= 0 {
            h5a::H5Acreate2(id, cname.as_ptr(), t, s, H5P_DEFAULT, H5P_DEFAULT)
        } else {
            -1
        };
        ok = ok && a >= 0 && h5a::H5Awrite(a, t, bytes.as_ptr().cast()) >= 0;
        if a >= 0 {
            h5a::H5Aclose(a);
        }
        if s >= 0 {
            h5s::H5Sclose(s);
        }
        h5t::H5Tclose(t);
        ok
    });
    ensure!(ok, "HDF5: cannot write the attribute {name:?}");
    Ok(())
}

/// Reads a scalar string attribute whatever its storage (fixed or variable length), with whether it
/// is null-terminated: for tests and readers of what [`NcFile`] wrote.
pub fn read_string_attr(loc: &Location, name: &str) -> Result<(String, bool)> {
    use hdf5_sys::{h5a, h5t};
    let attr = loc
        .attr(name)
        .with_context(|| format!("no attribute {name:?}"))?;
    let id = attr.id();
    // SAFETY: as in `fixed_string_attr`; a variable-length string is read into a pointer that HDF5
    // allocated and that is freed with H5free_memory.
    let out = hdf5::sync::sync(|| unsafe {
        let t = h5a::H5Aget_type(id);
        if t < 0 {
            return None;
        }
        let res = if h5t::H5Tget_class(t) != h5t::H5T_class_t::H5T_STRING {
            None
        } else {
            let nullterm = h5t::H5Tget_strpad(t) == h5t::H5T_str_t::H5T_STR_NULLTERM;
            if h5t::H5Tis_variable_str(t) > 0 {
                let mut p: *mut std::os::raw::c_char = std::ptr::null_mut();
                if h5a::H5Aread(id, t, (&mut p as *mut *mut std::os::raw::c_char).cast()) < 0
                    || p.is_null()
                {
                    None
                } else {
                    let s = std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned();
                    hdf5_sys::h5::H5free_memory(p.cast());
                    Some((s, nullterm))
                }
            } else {
                let n = h5t::H5Tget_size(t);
                let mut buf = vec![0u8; n];
                if h5a::H5Aread(id, t, buf.as_mut_ptr().cast()) < 0 {
                    None
                } else {
                    let end = buf.iter().position(|&b| b == 0).unwrap_or(n);
                    Some((String::from_utf8_lossy(&buf[..end]).into_owned(), nullterm))
                }
            }
        };
        h5t::H5Tclose(t);
        res
    });
    out.with_context(|| format!("attribute {name:?} is not a readable string"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdf5::ReferencedObject;

    /// The name of the dataset an object reference points to, relative to its group.
    fn target_name(loc: &Location, r: &ObjectReference1) -> String {
        match loc.dereference(r).unwrap() {
            ReferencedObject::Dataset(d) => d.name().rsplit('/').next().unwrap().to_string(),
            other => panic!("reference to a non-dataset: {other:?}"),
        }
    }

    /// Two groups with dimensions of the same names: every variable's DIMENSION_LIST points at its own
    /// group's scales, axis by axis, each scale's REFERENCE_LIST points back, the scale attributes have
    /// the null-terminated form H5DS requires, and the dimension ids are unique in the file.
    ///
    /// HDF5's own H5DS functions accept such files as dimension scales (checked by hand with h5py 3.16 on
    /// a `posterior.nc` of `infer fit`: every scale `is_scale`, every variable axis `is_attached` to its
    /// scale) and netCDF4-python 1.7.5 (netCDF-C 4.10.1) lists the groups, dimensions and variables:
    ///
    /// ```python
    /// import h5py, netCDF4
    /// f = h5py.File("posterior.nc", "r")
    /// for g in f.values():
    ///     for ds in g.values():
    ///         print(ds.name, ds.is_scale or [h5py.h5ds.is_attached(ds.id, ds.dims[i][0].id, i)
    ///                                        for i in range(ds.ndim)])
    /// for g in netCDF4.Dataset("posterior.nc").groups.values():
    ///     print(g.name, dict(g.dimensions), [(v.name, v.dimensions) for v in g.variables.values()])
    /// ```
    #[test]
    fn dimension_scales_link_variables_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.nc");
        let mut f = NcFile::create(&path, "arclight=test").unwrap();
        for g in ["a", "b"] {
            let mut grp = f.group(g).unwrap();
            grp.dimension("chain", &[0, 1]).unwrap();
            grp.dimension("draw", &[0, 1, 2]).unwrap();
            grp.dimension("z_dim", &[0, 1, 2, 3]).unwrap();
            grp.variable("x", &["chain", "draw"], &[1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0])
                .unwrap();
            grp.variable("z", &["chain", "draw", "z_dim"], &[0.5f64; 24])
                .unwrap();
            grp.bool_variable(
                "flag",
                &["chain", "draw"],
                &[true, false, false, true, false, false],
            )
            .unwrap();
            // a wrong length or an unknown dimension is an error naming the variable
            let e = grp
                .variable("bad", &["chain", "draw"], &[1.0f64])
                .unwrap_err();
            assert!(e.to_string().contains("\"bad\""), "{e}");
            let e = grp
                .variable("bad", &["chain", "nope"], &[1.0f64])
                .unwrap_err();
            assert!(e.to_string().contains("nope"), "{e}");
            grp.attr("created_at", "2026-01-01T00:00:00Z").unwrap();
            grp.finish().unwrap();
        }
        f.close().unwrap();

        let f = File::open(&path).unwrap();
        let (props, _) = read_string_attr(&f, "_NCProperties").unwrap();
        assert!(
            props.starts_with("version=2,arclight=test,hdf5="),
            "{props}"
        );
        let mut dimids = Vec::new();
        for g in ["a", "b"] {
            let grp = f.group(g).unwrap();
            for (dim, len) in [("chain", 2), ("draw", 3), ("z_dim", 4)] {
                let s = grp.dataset(dim).unwrap();
                assert_eq!(s.shape(), vec![len]);
                assert_eq!(
                    s.read_raw::<i64>().unwrap(),
                    (0..len as i64).collect::<Vec<_>>()
                );
                assert_eq!(
                    read_string_attr(&s, "CLASS").unwrap(),
                    ("DIMENSION_SCALE".to_string(), true)
                );
                assert_eq!(
                    read_string_attr(&s, "NAME").unwrap(),
                    (dim.to_string(), true)
                );
                dimids.push(
                    s.attr("_Netcdf4Dimid")
                        .unwrap()
                        .read_scalar::<i32>()
                        .unwrap(),
                );
                let refs: Vec<ScaleReference> =
                    s.attr("REFERENCE_LIST").unwrap().read_raw().unwrap();
                let mut back: Vec<(String, u32)> = refs
                    .iter()
                    .map(|r| (target_name(&grp, &r.dataset), r.dimension))
                    .collect();
                back.sort();
                let want: Vec<(String, u32)> = match dim {
                    "chain" => vec![("flag".into(), 0), ("x".into(), 0), ("z".into(), 0)],
                    "draw" => vec![("flag".into(), 1), ("x".into(), 1), ("z".into(), 1)],
                    _ => vec![("z".into(), 2)],
                };
                assert_eq!(back, want, "{g}/{dim}");
            }
            for (var, dims) in [
                ("x", vec!["chain", "draw"]),
                ("z", vec!["chain", "draw", "z_dim"]),
                ("flag", vec!["chain", "draw"]),
            ] {
                let ds = grp.dataset(var).unwrap();
                let lists: Vec<VarLenArray<ObjectReference1>> =
                    ds.attr("DIMENSION_LIST").unwrap().read_raw().unwrap();
                let names: Vec<String> = lists
                    .iter()
                    .map(|l| {
                        assert_eq!(l.len(), 1);
                        target_name(&grp, &l[0])
                    })
                    .collect();
                assert_eq!(names, dims, "{g}/{var}");
                // the scale reached is this group's own
                let d0 = match grp.dereference(&lists[0][0]).unwrap() {
                    ReferencedObject::Dataset(d) => d.name(),
                    _ => unreachable!(),
                };
                assert_eq!(d0, format!("/{g}/chain"));
            }
            let flag = grp.dataset("flag").unwrap();
            assert_eq!(flag.read_raw::<i8>().unwrap(), vec![1, 0, 0, 1, 0, 0]);
            assert_eq!(read_string_attr(&flag, "dtype").unwrap().0, "bool");
            assert_eq!(
                read_string_attr(&grp, "created_at").unwrap().0,
                "2026-01-01T00:00:00Z"
            );
        }
        dimids.sort();
        assert_eq!(dimids, (0..6).collect::<Vec<_>>());
    }
}
