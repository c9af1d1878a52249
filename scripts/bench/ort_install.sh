# Sourced by the benchmark scripts: installs onnxruntime-node@$ORT_VERSION into
# ${EDGEINFER_CACHE:-$HOME/.cache/edgeinfer}/ort unless it is there already, and exports
# EDGEINFER_ORT_DIR (where scripts/bench/*.js find it). Needs `log` and ORT_VERSION.
#
# --ignore-scripts: the package already ships libonnxruntime.so.1 and the N-API binding for
# linux/x64 in bin/napi-v6/linux/x64/. Its postinstall (script/install.js) only downloads the
# CUDA/TensorRT provider libraries from NuGet, which a CPU benchmark does not use and which this
# network cannot reach anyway.
ORT_DIR=${EDGEINFER_CACHE:-$HOME/.cache/edgeinfer}/ort
ort_ok() {
  node -e "const p='$ORT_DIR/node_modules/onnxruntime-node';
           if (require(p + '/package.json').version !== '$ORT_VERSION') process.exit(1);
           require(p);" 2>/dev/null
}
if ort_ok; then
  log "onnxruntime-node@$ORT_VERSION already in $ORT_DIR"
else
  log "installing onnxruntime-node@$ORT_VERSION into $ORT_DIR"
  mkdir -p "$ORT_DIR"
  npm install --prefix "$ORT_DIR" --ignore-scripts --no-audit --no-fund --loglevel=error \
    "onnxruntime-node@$ORT_VERSION" >&2
  ort_ok || { log "require('onnxruntime-node') fails after the install in $ORT_DIR"; exit 1; }
fi
export EDGEINFER_ORT_DIR=$ORT_DIR
