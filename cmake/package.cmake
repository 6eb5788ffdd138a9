# Packaging: the man page, the files only the Debian package installs (the
# systemd unit, /etc/default/pgpulse) and the package itself (CPack, DEB
# generator): `cmake --build build --target package`.
#
# The unit and the defaults file have absolute destinations, so they are
# in the component `system`, which a plain `cmake --install` leaves out
# (it would write to /lib and /etc whatever the prefix); the package holds
# every component.

# The man page is generated from `pgpulse --help` at build time, with the
# sections --help lacks from deploy/man/pgpulse.h2m.
find_program(HELP2MAN help2man)
if(HELP2MAN)
  set(PGPULSE_MAN ${CMAKE_BINARY_DIR}/pgpulse.1)
  add_custom_command(
    OUTPUT ${PGPULSE_MAN}.gz
    COMMAND ${HELP2MAN} --no-info --section=1 --version-string=${PROJECT_VERSION}
            --include=${CMAKE_SOURCE_DIR}/deploy/man/pgpulse.h2m
            --output=${PGPULSE_MAN} $<TARGET_FILE:pgpulse>
    # -n: no name or time stamp in the header, so the file is reproducible
    COMMAND gzip -9nf ${PGPULSE_MAN}
    DEPENDS pgpulse ${CMAKE_SOURCE_DIR}/deploy/man/pgpulse.h2m
    COMMENT "generating the man page from pgpulse --help"
    VERBATIM)
  add_custom_target(man ALL DEPENDS ${PGPULSE_MAN}.gz)
  install(FILES ${PGPULSE_MAN}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
else()
  message(STATUS "help2man not found: no man page, and no package "
                 "(deploy/deps.sh package installs it)")
endif()

install(FILES deploy/debian/copyright docs/migration.md docs/metrics.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES deploy/systemd/pgpulse.service DESTINATION /lib/systemd/system
        COMPONENT system EXCLUDE_FROM_ALL)
# 0640: it may hold a password; systemd reads it as root.
install(FILES deploy/systemd/pgpulse.default DESTINATION /etc/default
        RENAME pgpulse PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ
        COMPONENT system EXCLUDE_FROM_ALL)
# For the flags file and password files pgpulse reads itself.
install(DIRECTORY DESTINATION /etc/pgpulse COMPONENT system EXCLUDE_FROM_ALL)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME pgpulse)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# The package's binary is stripped, as Debian's are; build/pgpulse keeps
# its debug information.
set(CPACK_STRIP_FILES TRUE)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Prometheus exporter for PostgreSQL")
# The summary is the first line of the Description field; this is the rest.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
  "pgpulse replaces postgres_exporter: the same port (9187),
DATA_SOURCE_NAME, most of its flags and its metric names (see
/usr/share/doc/pgpulse for what differs). It keeps one
asynchronous connection per server, runs its query catalog on its own
schedule and serves /metrics from a page rendered once per collection, so
a scrape never waits on a database.
.
The package runs it as the systemd service pgpulse.service, configured in
/etc/default/pgpulse.")
set(PGPULSE_MAINTAINER "pgpulse maintainers <maintainers@users.noreply.r-seed-dfbfd759.example>"
    CACHE STRING "Maintainer field of the Debian package")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${PGPULSE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# The libraries' packages come from dpkg-shlibdeps (dpkg-dev); the
# maintainer scripts need adduser and deb-systemd-helper.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, init-system-helpers (>= 1.54~)")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${CMAKE_SOURCE_DIR}/deploy/debian/conffiles
  ${CMAKE_SOURCE_DIR}/deploy/debian/postinst
  ${CMAKE_SOURCE_DIR}/deploy/debian/prerm
  ${CMAKE_SOURCE_DIR}/deploy/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
# One package of every component, the `system` one included.
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_GROUPING ALL_COMPONENTS_IN_ONE)
set(CPACK_COMPONENTS_ALL Unspecified system)
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/package)
include(CPack)
