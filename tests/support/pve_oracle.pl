#!/usr/bin/perl
# Proxmox's own parameter validator as a test oracle (see ../sim/test_pve_oracle.py).
# Usage: perl -I../shared/pve/perl tests/support/pve_oracle.pl FORMATS_JSON < cases
# Registers qemu-server's property-string formats from formats.json (and pve-storage's
# pve-volume-id from its transcribed pattern), then reads JSON lines:
#   {"formats": [NAME, ...]}                      -> {"known": [the names registered]}
#   {"schema": NAME, "parameters": {...}}        a method's parameter schema
#   {"case": ID, "schema": NAME, "params": {...}} a request's parameters
# and prints one JSON line per case: {"case": ID, "ok": 0|1, "errors": {...}}.
use strict;
use warnings;
use JSON;
use PVE::JSONSchema;

my $json = JSON->new->utf8->canonical;
open(my $fh, '<', $ARGV[0]) or die "cannot read $ARGV[0]: $!\n";
my $formats = $json->decode(do { local $/; <$fh> });
close($fh);

for my $name (qw(pve-qm-hostpci pve-qm-ipconfig pve-qm-cicustom pve-qm-boot pve-vm-cpu-conf)) {
    my $fmt = {};
    for my $key (grep { !/^_/ } keys %{ $formats->{$name} }) {
        my %sub = %{ $formats->{$name}->{$key} };
        delete $sub{note};
        $fmt->{$key} = \%sub;
    }
    PVE::JSONSchema::register_format($name, $fmt);
}
my $volume_re = $formats->{'simple-formats'}->{'pve-volume-id'}->{pattern};
PVE::JSONSchema::register_format('pve-volume-id', sub {
    my ($volid, $noerr) = @_;
    return $volid if $volid =~ m/^(?:$volume_re)$/;
    return undef if $noerr;
    die "unable to parse volume ID '$volid'\n";
});

# The method schema without the optional parameters a case does not send: the same
# verdict (check_object only looks at those to report them missing, and they are
# optional), without walking the hundreds of expanded VM options for every case.
sub pruned {
    my ($schema, $params) = @_;
    my $props = $schema->{properties} // {};
    my %kept = map { $_ => $props->{$_} }
        grep { exists $params->{$_} || !$props->{$_}->{optional} } keys %$props;
    return { %$schema, properties => \%kept };
}

my %schemas;
$| = 1;
while (my $line = <STDIN>) {
    my $msg = $json->decode($line);
    if (my $names = $msg->{formats}) {
        my @known = grep { PVE::JSONSchema::get_format($_) } @$names;
        print $json->encode({ known => \@known }), "\n";
        next;
    }
    if (!defined($msg->{case})) {
        $schemas{ $msg->{schema} } = $msg->{parameters};
        next;
    }
    my $out = { case => $msg->{case}, ok => 1 };
    my $params = $msg->{params};
    eval { PVE::JSONSchema::validate($params, pruned($schemas{ $msg->{schema} }, $params)) };
    if (my $err = $@) {
        $out->{ok} = 0;
        $out->{errors} = ref($err) && $err->{errors} ? $err->{errors} : { '' => "$err" };
    }
    print $json->encode($out), "\n";
}
