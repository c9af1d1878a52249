# Debian package of the agent: `cpack -G DEB` in a build directory (scripts/package.sh does it).
#
# Holds /usr/bin/edgeinfer-agent, /usr/bin/edgeinfer-simulate, /usr/bin/edgeinfer (the model
# tool), the systemd unit in /lib/systemd/system and the example configuration as the conffile
# /etc/edgeinfer/edgeinfer-agent.toml (dpkg keeps an operator's edits across upgrades).
# Included at the end of the top-level CMakeLists.txt, after every install() rule.

# The example config belongs to agent/, but its place in the package is a packaging decision.
install(FILES ${CMAKE_SOURCE_DIR}/agent/edgeinfer-agent.example.toml
        DESTINATION /etc/edgeinfer RENAME edgeinfer-agent.toml
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

# cpack installs what is already built and does not first build every target (the tests
# included) through the `preinstall` target: scripts/package.sh builds the packaged binaries.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME edgeinfer)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "edgeinfer")
set(CPACK_PACKAGE_CONTACT "edgeinfer maintainers <edgeinfer@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "edge inference agent: MQTT sensor streams to quantized neural networks")
set(CPACK_PACKAGE_DESCRIPTION
    "edgeinfer-agent subscribes to MQTT sensor topics, batches windows of readings into a\n\
quantized neural-network engine and publishes results and its own health over MQTT, keeping\n\
results in SQLite while the uplink is down. It runs as a hardened systemd service with a\n\
liveness watchdog and shrinks its memory before the OOM killer acts.")
# The binaries go to /usr/bin whatever CMAKE_INSTALL_PREFIX the build was configured with.
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # edgeinfer_0.1.0_amd64.deb
# Depends: computed by dpkg-shlibdeps from the binaries' shared libraries (libpaho, libsqlite3,
# libopenblas, libsystemd, libprotobuf/libonnx for the model tool, ...).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The unit needs systemd (tested with 252; glibc from shlibdeps already pins Debian 12 or later).
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "mosquitto")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/systemd/debian/conffiles
    ${CMAKE_SOURCE_DIR}/systemd/debian/postinst
    ${CMAKE_SOURCE_DIR}/systemd/debian/prerm
    ${CMAKE_SOURCE_DIR}/systemd/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)
