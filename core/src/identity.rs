//! Where a process runs: the container id and the Kubernetes pod uid that
//! its cgroup path names.
//!
//! Nothing else in `/proc` tells which container a process belongs to
//! without asking the runtime, but every runc-based runtime names a
//! container's cgroup after its 64-hex id and the kubelet names a pod's
//! cgroup after the pod's uid. The layouts recognised are the ones Falco,
//! Tracee, cAdvisor and OpenTelemetry recognise: Docker, containerd, CRI-O
//! and podman, cgroupfs and systemd drivers, cgroup v1, v2 and hybrid.
//!
//! The preload library records the text of `/proc/self/cgroup`; the CLI
//! turns it into a [`Placement`] to group processes by container and pod.
//! Every input is handled in one pass with no panic: the text may come from
//! a dump file anyone could have written.
//!
//! A process in its own cgroup namespace (Docker's default on cgroup v2,
//! and containerd's under Kubernetes on v2) sees only `0::/`, and then no
//! id can be read from this file at all.

/// The longest cgroup path kept. The kernel's own limit on a path is 4096
/// bytes (`PATH_MAX`), so a longer one is not a real cgroup.
pub const CGROUP_CAP: usize = 4096;

/// Where a process runs, as its cgroup membership says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    /// The one path chosen to show, e.g. `/docker/<id>` or
    /// `/kubepods.slice/…/cri-containerd-<id>.scope`; at most
    /// [`CGROUP_CAP`] bytes. Empty when the text held no cgroup line.
    pub cgroup: String,
    /// The container's id: 64 lowercase hex characters.
    pub container_id: Option<String>,
    /// The pod's uid, lowercase: a UUID with dashes, or the 32 hex
    /// characters the kubelet gives a static pod (etcd, kube-apiserver).
    pub pod_uid: Option<String>,
}

/// What runtimes put before a container id in a cgroup's name: systemd
/// scopes (`docker-<id>.scope`, `cri-containerd-<id>.scope`,
/// `crio-<id>.scope`, `libpod-<id>.scope`) and cgroupfs names
/// (`crio-<id>`, `libpod-<id>`). Monitors such as `crio-conmon-<id>.scope`
/// are left out by the id check itself: `conmon-<id>` is not an id.
const RUNTIME_PREFIXES: [&str; 4] = ["docker-", "cri-containerd-", "crio-", "libpod-"];

/// From the text of `/proc/PID/cgroup`: cgroup v1 lines
/// `N:controllers:/path`, the v2 line `0::/path`, or a hybrid mix.
///
/// The path shown, and the ids read from it, is the first of: the v2 path
/// if it names a container; the first v1 path (in file order, `name=systemd`
/// included) that names one; the v2 path if it is not `/`; the first path
/// that is not `/`; the first path at all. A v1 container path wins over a
/// v2 path without one because in hybrid mode the runtime may have placed
/// the container only in the v1 hierarchies.
pub fn placement_from_cgroup_file(text: &str) -> Placement {
    let mut unified: Option<&str> = None;
    let mut first_v1_container: Option<(&str, String)> = None;
    let mut first_placed: Option<&str> = None;
    let mut first_any: Option<&str> = None;
    for line in text.lines() {
        let Some((is_unified, path)) = parse_line(line) else {
            continue;
        };
        first_any.get_or_insert(path);
        if path == "/" {
            continue;
        }
        first_placed.get_or_insert(path);
        if is_unified {
            unified.get_or_insert(path);
        } else if first_v1_container.is_none() {
            first_v1_container = container_id_from_path(path).map(|id| (path, id));
        }
    }

    let unified_container = unified.and_then(|path| Some((path, container_id_from_path(path)?)));
    let (path, container_id) = match unified_container.or(first_v1_container) {
        Some((path, id)) => (path, Some(id)),
        None => match unified.or(first_placed).or(first_any) {
            Some(path) => (path, None),
            None => return Placement::default(),
        },
    };
    Placement {
        cgroup: capped(path).to_owned(),
        container_id,
        pod_uid: pod_uid_from_path(path),
    }
}

/// The container id a cgroup path names, if any. When containers nest
/// (Docker in Docker, a pod inside a container), the innermost one: the
/// last id on the path.
pub fn container_id_from_path(path: &str) -> Option<String> {
    path_pieces(path)
        .filter_map(container_id_in_piece)
        .last()
        .map(str::to_owned)
}

/// The Kubernetes pod uid a cgroup path names, if any, with the dashes the
/// systemd driver writes as `_` put back: `kubepods-burstable-pod<uid>.slice`
/// (also `-besteffort-` and, for guaranteed pods, none), or a `pod<uid>`
/// directory under `kubepods` for the cgroupfs driver. The innermost one
/// when there are several.
pub fn pod_uid_from_path(path: &str) -> Option<String> {
    let mut under_kubepods = false;
    let mut found = None;
    for piece in path_pieces(path) {
        if let Some(raw) = raw_pod_uid_in_piece(piece, under_kubepods) {
            found = Some(raw);
        }
        under_kubepods |= piece.contains("kubepods");
    }
    found.map(|raw| raw.replace('_', "-"))
}

/// A line's hierarchy kind and path: `(true, path)` for the v2 line
/// `0::path`, `(false, path)` for a v1 line. `None` for anything that is
/// not a cgroup line. The path may itself hold colons, so only the first
/// two separate fields.
fn parse_line(line: &str) -> Option<(bool, &str)> {
    let mut fields = line.splitn(3, ':');
    let hierarchy = fields.next()?;
    let controllers = fields.next()?;
    let path = fields.next()?;
    let numbered = !hierarchy.is_empty() && hierarchy.bytes().all(|b| b.is_ascii_digit());
    if !numbered || !path.starts_with('/') {
        return None;
    }
    Some((hierarchy == "0" && controllers.is_empty(), path))
}

/// The names along a path. A colon separates too, because containerd
/// without systemd cgroups names a container
/// `kubepods-…-pod<uid>.slice:cri-containerd:<id>`.
fn path_pieces(path: &str) -> impl Iterator<Item = &str> {
    path.split(['/', ':'])
}

fn container_id_in_piece(piece: &str) -> Option<&str> {
    let unprefixed = RUNTIME_PREFIXES
        .iter()
        .find_map(|prefix| piece.strip_prefix(prefix))
        .unwrap_or(piece);
    let id = unprefixed.strip_suffix(".scope").unwrap_or(unprefixed);
    is_container_id(id).then_some(id)
}

/// A pod uid as this piece spells it (maybe with `_` for `-`), if the piece
/// is a pod's cgroup: a systemd slice `…kubepods…-pod<uid>.slice`, or, below
/// a `kubepods` directory, a cgroupfs `pod<uid>`.
fn raw_pod_uid_in_piece(piece: &str, under_kubepods: bool) -> Option<&str> {
    let raw = match piece.strip_suffix(".slice") {
        Some(slice) => {
            let (parent, raw) = slice.rsplit_once("-pod")?;
            parent.contains("kubepods").then_some(raw)?
        }
        None if under_kubepods => piece.strip_prefix("pod")?,
        None => return None,
    };
    is_pod_uid(raw).then_some(raw)
}

fn is_container_id(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(is_lower_hex)
}

/// A lowercase UUID (dashes written as `-` or `_`), or 32 lowercase hex
/// characters: the md5 the kubelet uses as a static pod's uid.
fn is_pod_uid(text: &str) -> bool {
    const DASHES: [usize; 4] = [8, 13, 18, 23];
    let bytes = text.as_bytes();
    match bytes.len() {
        32 => bytes.iter().copied().all(is_lower_hex),
        36 => bytes.iter().enumerate().all(|(at, &b)| {
            if DASHES.contains(&at) {
                b == b'-' || b == b'_'
            } else {
                is_lower_hex(b)
            }
        }),
        _ => false,
    }
}

fn is_lower_hex(byte: u8) -> bool {
    byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte)
}

/// The path cut to [`CGROUP_CAP`] bytes, on a character boundary.
fn capped(path: &str) -> &str {
    let mut end = path.len().min(CGROUP_CAP);
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    &path[..end]
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use proptest::prelude::*;

    use super::*;

    const ID: &str = "4f797c539e6c745de61a93ca3ff892358ecbcaccd8414d5db545c38428142970";
    const OTHER_ID: &str = "9ec39b91f3d70e1beff50a308f77067065ea6be0d91a3378375056cd4422cf3d";
    const POD: &str = "1f2e3d4c-5b6a-7980-1a2b-3c4d5e6f7a8b";
    const POD_SYSTEMD: &str = "1f2e3d4c_5b6a_7980_1a2b_3c4d5e6f7a8b";
    /// A static pod's uid as the kubelet makes it: an md5 in hex.
    const STATIC_POD: &str = "6b2a1f0e5c6d4b3a2f1e0d9c8b7a6f5e";

    /// Every v1 controller line of a hybrid host, each with `path`.
    fn v1_lines(path: &str) -> String {
        let controllers = [
            "pids",
            "blkio",
            "freezer",
            "devices",
            "memory",
            "cpuset",
            "cpu,cpuacct",
            "net_cls,net_prio",
            "perf_event",
            "hugetlb",
            "rdma",
        ];
        let mut text = String::new();
        for (at, controller) in controllers.iter().enumerate() {
            text += &format!("{}:{controller}:{path}\n", 12 - at);
        }
        text + &format!("1:name=systemd:{path}\n")
    }

    fn placed(cgroup: &str, container_id: Option<&str>, pod_uid: Option<&str>) -> Placement {
        Placement {
            cgroup: cgroup.to_owned(),
            container_id: container_id.map(str::to_owned),
            pod_uid: pod_uid.map(str::to_owned),
        }
    }

    #[test]
    fn docker_cgroupfs_v1_and_hybrid() {
        let path = format!("/docker/{ID}");
        let v1 = v1_lines(&path);
        let expected = placed(&path, Some(ID), None);
        assert_eq!(placement_from_cgroup_file(&v1), expected);
        let hybrid = v1 + &format!("0::{path}\n");
        assert_eq!(placement_from_cgroup_file(&hybrid), expected);
    }

    #[test]
    fn docker_systemd_v1_and_v2() {
        let path = format!("/system.slice/docker-{ID}.scope");
        let expected = placed(&path, Some(ID), None);
        assert_eq!(placement_from_cgroup_file(&v1_lines(&path)), expected);
        assert_eq!(
            placement_from_cgroup_file(&format!("0::{path}\n")),
            expected
        );
    }

    #[test]
    fn kubernetes_cgroupfs_every_qos_class() {
        for qos in ["/burstable", "/besteffort", ""] {
            let path = format!("/kubepods{qos}/pod{POD}/{ID}");
            let expected = placed(&path, Some(ID), Some(POD));
            assert_eq!(placement_from_cgroup_file(&v1_lines(&path)), expected);
            assert_eq!(placement_from_cgroup_file(&format!("0::{path}")), expected);
        }
    }

    #[test]
    fn kubernetes_systemd_containerd_every_qos_class() {
        for qos in ["burstable", "besteffort"] {
            let path = format!(
                "/kubepods.slice/kubepods-{qos}.slice/kubepods-{qos}-pod{POD_SYSTEMD}.slice/cri-containerd-{ID}.scope"
            );
            let expected = placed(&path, Some(ID), Some(POD));
            assert_eq!(
                placement_from_cgroup_file(&format!("0::{path}\n")),
                expected
            );
            assert_eq!(placement_from_cgroup_file(&v1_lines(&path)), expected);
        }
        let guaranteed =
            format!("/kubepods.slice/kubepods-pod{POD_SYSTEMD}.slice/cri-containerd-{ID}.scope");
        assert_eq!(
            placement_from_cgroup_file(&format!("0::{guaranteed}\n")),
            placed(&guaranteed, Some(ID), Some(POD))
        );
    }

    #[test]
    fn containerd_without_systemd_cgroups_under_a_systemd_kubelet() {
        let path = format!(
            "/system.slice/containerd.service/kubepods-burstable-pod{POD_SYSTEMD}.slice:cri-containerd:{ID}"
        );
        assert_eq!(
            placement_from_cgroup_file(&format!("0::{path}\n")),
            placed(&path, Some(ID), Some(POD))
        );
    }

    #[test]
    fn cri_o_systemd_and_cgroupfs_but_not_its_monitor() {
        let slice = format!(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{POD_SYSTEMD}.slice"
        );
        let container = format!("{slice}/crio-{ID}.scope");
        assert_eq!(
            placement_from_cgroup_file(&format!("0::{container}\n")),
            placed(&container, Some(ID), Some(POD))
        );
        // conmon watches the container from beside it: same pod, no container.
        let monitor = format!("{slice}/crio-conmon-{ID}.scope");
        assert_eq!(
            placement_from_cgroup_file(&format!("0::{monitor}\n")),
            placed(&monitor, None, Some(POD))
        );
        let cgroupfs = format!("/kubepods/besteffort/pod{POD}/crio-{ID}");
        assert_eq!(container_id_from_path(&cgroupfs).as_deref(), Some(ID));
        assert_eq!(pod_uid_from_path(&cgroupfs).as_deref(), Some(POD));
        assert_eq!(
            container_id_from_path(&format!("/crio-{ID}")).as_deref(),
            Some(ID)
        );
    }

    #[test]
    fn podman_rootless_rootful_and_cgroupfs_but_not_its_monitor() {
        let rootless = format!(
            "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container"
        );
        assert_eq!(
            placement_from_cgroup_file(&format!("0::{rootless}\n")),
            placed(&rootless, Some(ID), None)
        );
        let rootful = format!("/machine.slice/libpod-{ID}.scope");
        assert_eq!(container_id_from_path(&rootful).as_deref(), Some(ID));
        let cgroupfs = format!("/libpod_parent/libpod-{ID}");
        assert_eq!(container_id_from_path(&cgroupfs).as_deref(), Some(ID));
        let monitor = format!("/machine.slice/libpod-conmon-{ID}.scope");
        assert_eq!(container_id_from_path(&monitor), None);
    }

    #[test]
    fn host_processes_have_no_ids() {
        let session = "/user.slice/user-0.slice/session-1.scope";
        assert_eq!(
            placement_from_cgroup_file(&format!("0::{session}\n")),
            placed(session, None, None)
        );
        assert_eq!(
            placement_from_cgroup_file("0::/\n"),
            placed("/", None, None)
        );
        let service = "/system.slice/docker.service";
        assert_eq!(
            placement_from_cgroup_file(&v1_lines(service)),
            placed(service, None, None)
        );
        // The kubelet's own slices name a QoS class, not a pod.
        let qos = "/kubepods.slice/kubepods-burstable.slice";
        assert_eq!(
            placement_from_cgroup_file(&format!("0::{qos}")),
            placed(qos, None, None)
        );
    }

    #[test]
    fn nested_containers_give_the_innermost() {
        let dind = format!("/docker/{OTHER_ID}/docker/{ID}");
        assert_eq!(container_id_from_path(&dind).as_deref(), Some(ID));
        let kind = format!(
            "/system.slice/docker-{OTHER_ID}.scope/kubelet.slice/kubelet-kubepods.slice/\
             kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{POD_SYSTEMD}.slice/\
             cri-containerd-{ID}.scope"
        );
        assert_eq!(container_id_from_path(&kind).as_deref(), Some(ID));
        assert_eq!(pod_uid_from_path(&kind).as_deref(), Some(POD));
        let outer_pod = "0f0e0d0c-0b0a-0908-0706-050403020100";
        let two_pods = format!("/kubepods/pod{outer_pod}/{OTHER_ID}/kubepods/pod{POD}/{ID}");
        assert_eq!(pod_uid_from_path(&two_pods).as_deref(), Some(POD));
    }

    #[test]
    fn a_container_id_is_exactly_64_lowercase_hex() {
        let short = &ID[..63];
        let long = format!("{ID}0");
        let upper = ID.to_uppercase();
        let not_hex = format!("{}g", &ID[..63]);
        for bad in [short, &long, &upper, &not_hex] {
            for path in [
                format!("/docker/{bad}"),
                format!("/system.slice/docker-{bad}.scope"),
                format!("/kubepods/besteffort/pod{POD}/{bad}"),
                format!("/x:cri-containerd:{bad}"),
            ] {
                assert_eq!(container_id_from_path(&path), None, "{path}");
            }
        }
        // Unknown runtimes and a suffix other than `.scope` are not read.
        assert_eq!(container_id_from_path(&format!("/lxc-{ID}")), None);
        assert_eq!(
            container_id_from_path(&format!("/docker-{ID}.service")),
            None
        );
    }

    #[test]
    fn a_pod_uid_must_be_a_uuid_or_a_static_pods_md5() {
        let path = format!("/kubepods/besteffort/pod{STATIC_POD}/{ID}");
        assert_eq!(pod_uid_from_path(&path).as_deref(), Some(STATIC_POD));
        let slice = format!("/kubepods.slice/kubepods-pod{STATIC_POD}.slice");
        assert_eq!(pod_uid_from_path(&slice).as_deref(), Some(STATIC_POD));
        let bad = [
            &POD[..35],
            "1f2e3d4c-5b6a-7980-1a2b-3c4d5e6f7a8b0",
            "1F2E3D4C-5B6A-7980-1A2B-3C4D5E6F7A8B",
            "1f2e3d4c-5b6a-7980-1a2b-3c4d5e6f7a8g",
            "1f2e3d4c5-b6a-7980-1a2b-3c4d5e6f7a8b",
        ];
        for uid in bad {
            let cgroupfs = format!("/kubepods/pod{uid}/{ID}");
            let systemd = format!(
                "/kubepods.slice/kubepods-pod{}.slice",
                uid.replace('-', "_")
            );
            assert_eq!(pod_uid_from_path(&cgroupfs), None, "{cgroupfs}");
            assert_eq!(pod_uid_from_path(&systemd), None, "{systemd}");
        }
        // `pod<uid>` means a pod only below the kubelet's cgroups.
        assert_eq!(pod_uid_from_path(&format!("/pod{POD}/{ID}")), None);
        assert_eq!(
            pod_uid_from_path(&format!("/system.slice/app-pod{POD_SYSTEMD}.slice")),
            None
        );
    }

    #[test]
    fn the_v2_path_wins_when_it_names_a_container() {
        let v2 = format!("/system.slice/docker-{ID}.scope");
        let text = v1_lines(&format!("/docker/{OTHER_ID}")) + &format!("0::{v2}\n");
        assert_eq!(
            placement_from_cgroup_file(&text),
            placed(&v2, Some(ID), None)
        );
    }

    #[test]
    fn a_v1_container_wins_over_a_v2_path_without_one() {
        // Hybrid host, Docker with the cgroupfs driver that left the
        // unified hierarchy alone.
        let v1 = format!("/docker/{ID}");
        let text = v1_lines(&v1) + "0::/system.slice/containerd.service\n";
        assert_eq!(
            placement_from_cgroup_file(&text),
            placed(&v1, Some(ID), None)
        );
    }

    #[test]
    fn the_first_v1_line_with_a_container_wins_and_name_systemd_counts() {
        let text = format!("3:cpu:/\n2:memory:/docker/{OTHER_ID}\n1:pids:/docker/{ID}\n0::/\n");
        assert_eq!(container_id_from_file(&text).as_deref(), Some(OTHER_ID));
        let text =
            format!("3:cpu:/\n2:memory:/system.slice/x.service\n1:name=systemd:/docker/{ID}\n");
        assert_eq!(container_id_from_file(&text).as_deref(), Some(ID));
    }

    #[test]
    fn without_containers_the_v2_path_then_the_first_placed_path() {
        let text = "3:cpu:/a\n2:memory:/b\n0::/c\n";
        assert_eq!(placement_from_cgroup_file(text), placed("/c", None, None));
        let text = "3:cpu:/\n2:memory:/b\n1:pids:/c\n0::/\n";
        assert_eq!(placement_from_cgroup_file(text), placed("/b", None, None));
    }

    #[test]
    fn text_that_is_not_a_cgroup_file() {
        let empty = Placement::default();
        for text in [
            "",
            "\n\n",
            "no colon here",
            "one:colon",
            "x:cpu:/docker/",
            ":cpu:/a",
            "0::relative",
        ] {
            assert_eq!(placement_from_cgroup_file(text), empty, "{text:?}");
        }
        let garbage = format!("\u{0}\u{fffd}:{ID}:\u{7f}\n0::/\u{0}/{ID}/\u{fffd}\n");
        assert_eq!(container_id_from_file(&garbage).as_deref(), Some(ID));
    }

    #[test]
    fn the_path_kept_is_capped_on_a_character_boundary() {
        let long = format!("/{}/docker-{ID}.scope", "é".repeat(CGROUP_CAP));
        let placement = placement_from_cgroup_file(&format!("0::{long}\n"));
        assert!(placement.cgroup.len() <= CGROUP_CAP && placement.cgroup.len() > CGROUP_CAP - 4);
        assert!(long.starts_with(&placement.cgroup));
        // The ids come from the whole path, not from what is kept.
        assert_eq!(placement.container_id.as_deref(), Some(ID));
    }

    #[test]
    fn large_hostile_input_takes_linear_time() {
        let started = Instant::now();
        let many_lines = format!("9:cpu:/docker/{ID}x\n").repeat(10_000) + "0::/\n";
        assert_eq!(placement_from_cgroup_file(&many_lines).container_id, None);
        let many_pieces = format!("0::{}\n", "/kubepods/pod".repeat(100_000));
        assert_eq!(placement_from_cgroup_file(&many_pieces).pod_uid, None);
        let many_colons = ":".repeat(1_000_000);
        assert_eq!(
            placement_from_cgroup_file(&many_colons),
            Placement::default()
        );
        let one_huge_line = format!("0::/{}", "a-pod".repeat(200_000) + ".slice");
        assert_eq!(
            placement_from_cgroup_file(&one_huge_line).cgroup.len(),
            CGROUP_CAP
        );
        // Each of these is a few megabytes; a quadratic pass would take minutes.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    /// This machine's own membership: whatever it is, it parses, and what
    /// comes out is taken from it. (Whether it names a container depends on
    /// where the tests run, so that is not asserted.)
    #[test]
    fn this_process() {
        let Ok(text) = std::fs::read_to_string("/proc/self/cgroup") else {
            return;
        };
        let placement = placement_from_cgroup_file(&text);
        assert!(
            text.lines().any(|line| line.contains(&placement.cgroup)),
            "{text}"
        );
        if let Some(id) = &placement.container_id {
            assert!(placement.cgroup.contains(id.as_str()));
        }
    }

    fn container_id_from_file(text: &str) -> Option<String> {
        placement_from_cgroup_file(text).container_id
    }

    /// What any placement must satisfy, whatever the text was.
    fn check_placement(text: &str) {
        let placement = placement_from_cgroup_file(text);
        assert!(placement.cgroup.len() <= CGROUP_CAP);
        assert!(placement.cgroup.is_empty() || text.contains(&placement.cgroup));
        if let Some(id) = &placement.container_id {
            assert!(is_container_id(id), "{id}");
            assert!(text.contains(id.as_str()));
        }
        if let Some(uid) = &placement.pod_uid {
            assert!(is_pod_uid(uid) && !uid.contains('_'), "{uid}");
        }
    }

    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(ID.to_owned()),
            Just(ID[..40].to_owned()),
            Just(POD.to_owned()),
            Just(POD_SYSTEMD.to_owned()),
            Just(STATIC_POD.to_owned()),
            prop::sample::select(vec![
                "/",
                ":",
                "\n",
                "0::",
                "1:name=systemd:",
                "docker-",
                "crio-",
                "crio-conmon-",
                "cri-containerd-",
                "libpod-",
                ".scope",
                ".slice",
                "kubepods",
                "-pod",
                "pod",
                "_",
                "-",
                "é",
                "\u{0}",
            ])
            .prop_map(str::to_owned),
            "[0-9a-fA-F_-]{0,12}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_text_never_panics(text in any::<String>()) {
            check_placement(&text);
        }

        #[test]
        fn cgroup_like_text_never_panics(pieces in prop::collection::vec(piece(), 0..40)) {
            check_placement(&pieces.concat());
        }

        #[test]
        fn any_id_is_found_in_every_layout(id in "[0-9a-f]{64}", uid in "[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}") {
            let systemd_uid = uid.replace('-', "_");
            for path in [
                format!("/docker/{id}"),
                format!("/kubepods/burstable/pod{uid}/{id}"),
                format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{systemd_uid}.slice/cri-containerd-{id}.scope"),
                format!("/kubepods.slice/kubepods-pod{systemd_uid}.slice/crio-{id}.scope"),
                format!("/system.slice/containerd.service/kubepods-besteffort-pod{systemd_uid}.slice:cri-containerd:{id}"),
            ] {
                let placement = placement_from_cgroup_file(&format!("0::{path}\n"));
                prop_assert_eq!(placement.container_id.as_deref(), Some(id.as_str()));
                let expected_pod = path.contains("pod").then_some(uid.as_str());
                prop_assert_eq!(placement.pod_uid.as_deref(), expected_pod);
            }
        }
    }
}
