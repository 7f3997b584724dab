# Packaging: install rules for what is not a target (man page, config,
# systemd units), the CPack DEB package, and the package test.
#
#   cmake --build build && (cd build && cpack -G DEB)
#   -> build/enrolsync_<version>-1_<arch>.deb
#
# The binaries' install() rules live next to their targets (src/cli,
# src/sandbox, tools). The package installs under /usr; the config and the
# systemd units use absolute destinations (/etc/enrolsync,
# /lib/systemd/system), so `cmake --install` as root writes those too.
include(GNUInstallDirs)

set(ENROLSYNC_PACKAGING_DIR ${CMAKE_SOURCE_DIR}/packaging)

# enrolsync(1), gzipped as Debian wants it (-n: no name or time stamp, so
# the same source gives the same bytes).
configure_file(${ENROLSYNC_PACKAGING_DIR}/enrolsync.1 ${CMAKE_BINARY_DIR}/packaging/enrolsync.1 @ONLY)
add_custom_command(
  OUTPUT ${CMAKE_BINARY_DIR}/packaging/enrolsync.1.gz
  COMMAND sh -c "gzip -9 -n -c enrolsync.1 > enrolsync.1.gz"
  DEPENDS ${CMAKE_BINARY_DIR}/packaging/enrolsync.1
  WORKING_DIRECTORY ${CMAKE_BINARY_DIR}/packaging
  COMMENT "Compressing enrolsync.1"
  VERBATIM)
add_custom_target(enrolsync_manpage ALL DEPENDS ${CMAKE_BINARY_DIR}/packaging/enrolsync.1.gz)
install(FILES ${CMAKE_BINARY_DIR}/packaging/enrolsync.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

# The example config: a conffile, root:enrolsync 0640 (the group is set by
# postinst; the archive can only carry root).
install(FILES ${ENROLSYNC_PACKAGING_DIR}/enrolsync.toml
  DESTINATION /etc/enrolsync
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)

# The log module's rotation policy (weekly, SIGUSR1 to reopen): a conffile.
install(FILES ${ENROLSYNC_PACKAGING_DIR}/logrotate/enrolsync
  DESTINATION /etc/logrotate.d
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

install(FILES
    ${ENROLSYNC_PACKAGING_DIR}/systemd/enrolsync.service
    ${ENROLSYNC_PACKAGING_DIR}/systemd/enrolsync-sync.service
    ${ENROLSYNC_PACKAGING_DIR}/systemd/enrolsync-sync.timer
  DESTINATION /lib/systemd/system
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

install(FILES ${ENROLSYNC_PACKAGING_DIR}/README.md
  DESTINATION ${CMAKE_INSTALL_DOCDIR}
  RENAME README.Debian)

# --- CPack: one DEB ---------------------------------------------------------
set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "enrolsync")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_VENDOR "enrolsync developers")
set(CPACK_PACKAGE_CONTACT "enrolsync developers <dev@enrolsync.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "keeps Moodle's courses and enrolments in step with a school MIS")
set(CPACK_PACKAGE_DESCRIPTION
  "enrolsync reads a school MIS's course and enrolment tables (iSAMS and alike,\n\
through SQLite, PostgreSQL, ODBC or CSV), works out what Moodle should look\n\
like, shows the plan, and applies it through Moodle's REST web services. Its\n\
settings map one to one onto Moodle's external database enrolment plugin.\n\
.\n\
Includes enrolsync-sandbox, a Moodle web-service simulator, and\n\
enrolsync-gen-school, a generator of test schools.")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "enrolsync developers <dev@enrolsync.invalid>")
set(CPACK_DEBIAN_PACKAGE_SECTION "admin")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_RELEASE "1")
set(CPACK_DEBIAN_FILE_NAME "DEB-DEFAULT")  # enrolsync_<version>-1_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)     # Depends from dpkg-shlibdeps...
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")  # ...plus what the maintainer scripts run
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "logrotate")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "odbc-postgresql, tdsodbc, libsqliteodbc")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${ENROLSYNC_PACKAGING_DIR}/debian/conffiles
  ${ENROLSYNC_PACKAGING_DIR}/debian/postinst
  ${ENROLSYNC_PACKAGING_DIR}/debian/prerm
  ${ENROLSYNC_PACKAGING_DIR}/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)

# --- Test ------------------------------------------------------------------
if(BUILD_TESTING)
  add_test(NAME package_test
    COMMAND bash ${ENROLSYNC_PACKAGING_DIR}/package_test.sh ${CMAKE_BINARY_DIR} ${CMAKE_CPACK_COMMAND}
            ${PROJECT_VERSION})
  set_tests_properties(package_test PROPERTIES
    LABELS package
    TIMEOUT 1200
    SKIP_RETURN_CODE 77
    RUN_SERIAL TRUE)  # dpkg's lock and the system user are machine-wide
endif()
