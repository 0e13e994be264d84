#!/usr/bin/env bash
# README's test command: every notebook under nbdev_test, the documentation site built (tools/docs.sh), the tests/
# suite under pytest (with the site and the widgets app checked in headless Chromium, tests/test_site.py), and the
# checks that keep the library, the notebooks and README.md in step, the GitHub workflows checked against GitHub's schema and the
# package built and installed in a fresh environment (tools/package_check.py). Exits non-zero if anything fails or if nothing was tested.
set -uo pipefail
cd "$(dirname "$0")/.."
# the offline CIFAR-10 copy beside the checkout, unless GRADSIM_DATA already says where the data are
if [ -z "${GRADSIM_DATA:-}" ] && [ -e ../shared/data/cifar10-jpeg.tar.gz ]; then
  export GRADSIM_DATA="$PWD/../shared/data/cifar10-jpeg.tar.gz"
fi
failed=()

echo "== library, notebooks and README in step with nbs/"
snapshot() { find gradsim_nb nbs README.md -type f -not -path '*/__pycache__/*' -not -path '*/.ipynb_checkpoints/*' -print0 | sort -z | xargs -0 md5sum; }
before=$(snapshot)
nbdev_export && nbdev_clean && python tools/readme.py || failed+=("export/clean/readme")
after=$(snapshot)
if [ "$before" != "$after" ]; then
  diff <(echo "$before") <(echo "$after") | grep '^[<>]' | awk '{print "  changed: " $3}' | sort -u
  echo "nbdev_export, nbdev_clean or tools/readme.py changed the files above: commit what they wrote"; failed+=("in step")
fi

echo "== notebooks (nbdev_test)"
n_nb=$(ls nbs/*.ipynb 2>/dev/null | wc -l)
log=$(mktemp)
nbdev_test --do_print --timing 2>&1 | tee "$log"
# nbdev prints "- Completed" for a failed notebook too; the failed ones are listed, tab-indented, after its summary line
ran_nb=$(grep -c '^- Completed' "$log" || true)
bad_nb=$(sed -n '/^nbdev Tests Failed/,$p' "$log" | grep -c $'^\t' || true)
done_nb=$((ran_nb - bad_nb))
if [ "$n_nb" -eq 0 ] || [ "$done_nb" -ne "$n_nb" ] || ! grep -q '^Success' "$log"; then
  echo "nbdev_test: $done_nb of $n_nb notebooks passed"; failed+=("notebooks")
fi
echo "notebooks: $done_nb passed, $((n_nb - done_nb)) failed"

echo "== documentation site (tools/docs.sh), checked in the browser by tests/test_site.py"
if python tools/docs.py --quiet; then
  export GRADSIM_SITE="$PWD/_site" GRADSIM_SITE_WARNINGS="$PWD/_sitebuild/warnings.txt"
else
  failed+=("site build")
fi

echo "== GitHub workflows (.github/workflows, against GitHub's schema) and the package (tools/package_check.py)"
check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yaml || failed+=("workflows")
python tools/package_check.py || failed+=("package")

echo "== tests/ (pytest)"
python -m pytest tests -q -p no:cacheprovider
rc=$?
[ $rc -eq 5 ] && echo "pytest collected no test"
[ $rc -ne 0 ] && failed+=("pytest")

if [ ${#failed[@]} -gt 0 ]; then echo "FAILED: ${failed[*]}"; exit 1; fi
