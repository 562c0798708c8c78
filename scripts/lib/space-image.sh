# shellcheck shell=bash
# scripts/space with SPACE_IMAGE=DIR: the dynos run the chat-node image, as on
# Heroku's container stack, instead of the checkout. DIR is what
# `scripts/container export TAG DIR` writes: the image's filesystem in
# DIR/rootfs, its user, working directory and environment in DIR/image.env and
# DIR/env. Sourced by scripts/space; defines functions only.
#
# Each dyno's process (and each one-off's, and `exec`) runs chrooted into
# DIR/rootfs, as the image's user, in its working directory, with the image's
# environment plus Heroku's variables and the config vars, through /bin/sh -c
# (the container stack's shell). /proc, /dev and the dyno's resolv.conf are
# mounted into the root inside the mount namespace `ip netns exec` gives the
# dyno, so the mounts disappear with its last process and nothing is mounted
# on the host. Nothing starts EPMD: as on Heroku, the node starts its own.
# Every dyno shares DIR/rootfs, like the dynos of one release share a slug.

image_mode() { [[ -n ${SPACE_IMAGE:-} ]]; }

# Loads DIR/image.env (IMAGE_USER, IMAGE_WORKDIR, ...); checks DIR.
image_load() {
    [[ -d $SPACE_IMAGE/rootfs && -f $SPACE_IMAGE/image.env && -f $SPACE_IMAGE/env ]] ||
        die "SPACE_IMAGE=$SPACE_IMAGE is not an exported image (scripts/container export TAG DIR)"
    # shellcheck disable=SC1091
    source "$SPACE_IMAGE/image.env"
    IMAGE_USER=${IMAGE_USER:-0:0}
    IMAGE_WORKDIR=${IMAGE_WORKDIR:-/}
    # A user given by name is looked up in the image's own passwd file.
    if [[ ${IMAGE_USER%%:*} =~ [^0-9] ]]; then
        local name=${IMAGE_USER%%:*} uid gid
        uid=$(awk -F: -v n="$name" '$1 == n {print $3}' "$SPACE_IMAGE/rootfs/etc/passwd")
        gid=$(awk -F: -v n="$name" '$1 == n {print $4}' "$SPACE_IMAGE/rootfs/etc/passwd")
        [[ -n $uid ]] || die "user $name is not in the image's /etc/passwd"
        IMAGE_USER=$uid:$gid
    fi
    [[ $IMAGE_USER == *:* ]] || IMAGE_USER=$IMAGE_USER:$(awk -F: -v u="$IMAGE_USER" '$3 == u {print $4}' \
        "$SPACE_IMAGE/rootfs/etc/passwd")
    [[ $IMAGE_USER != *: ]] || IMAGE_USER=${IMAGE_USER}0
}

# The image's environment (PATH, HOME, LANG, ...), one VAR=value a line.
image_env_lines() { grep . "$SPACE_IMAGE/env" || true; }

# image_mounts: inside the dyno's mount namespace, what a container has.
image_mounts() {
    local r=$SPACE_IMAGE/rootfs
    mountpoint -q "$r/proc" || mount -t proc proc "$r/proc"
    mountpoint -q "$r/dev" || mount --rbind /dev "$r/dev"
    # The dyno's resolver (ip netns exec put /etc/netns/NS/resolv.conf there).
    [[ -e $r/etc/resolv.conf ]] || : >"$r/etc/resolv.conf"
    mount --bind /etc/resolv.conf "$r/etc/resolv.conf"
}

# image_exec CMD: runs CMD in the image as its user, with the current
# environment (which the caller has set to the dyno's). Replaces the shell.
image_exec() {
    local uid=${IMAGE_USER%%:*} gid=${IMAGE_USER#*:}
    exec chroot --userspec="$uid:$gid" --groups="$gid" "$SPACE_IMAGE/rootfs" \
        /usr/bin/env --chdir="$IMAGE_WORKDIR" /bin/sh -c "$1"
}
