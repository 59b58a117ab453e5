#!/bin/busybox sh
# PID 1 of the test guest: loads the block and filesystem modules, mounts each
# drive each way, prints what it sees between markers on the serial console, and
# powers off.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules.order); do insmod "/modules/$m" || echo "INSMOD-FAILED $m"; done
n=0
while [ ! -b /dev/vdb ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done

list() {
    echo "=== $1"
    if mount -t "$2" -o "ro,$3" "$4" /mnt; then
        cd /mnt
        find . -mindepth 1 | sort | while read -r f; do
            if [ -d "$f" ]; then
                echo "D $(stat -c %a:%u:%g "$f") ${f#./}"
            else
                echo "F $(stat -c %a:%u:%g "$f") $(sha256sum < "$f" | cut -c1-64) ${f#./}"
            fi
        done
        cd /
        umount /mnt
    else
        echo "MOUNT-FAILED $1"
    fi
}

echo "===BEGIN==="
list iso-rock iso9660 "" /dev/vda
list iso-norock iso9660 norock /dev/vda
list iso-nojoliet iso9660 nojoliet /dev/vda
list iso-primary iso9660 norock,nojoliet /dev/vda
list vfat vfat iocharset=utf8 /dev/vdb
echo "===END==="
poweroff -f
