"""The search on a Dask distributed cluster on 127.0.0.1, through the search_executor resource: the
same history as a local search, mutual TLS (a client without the certificates is turned away), an
unencrypted scheduler off this host refused, and the training data sent once per search."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from bio_assets.core.search.evolution import EvolutionParams, run_search
from resources.search_executor import SearchExecutorResource
from tests.search_fakes import cell_space, jittery_fitness
from tests.test_search import search

distributed = pytest.importorskip("distributed")


def test_search_on_a_local_dask_cluster_matches_the_local_history():
    params = EvolutionParams(population_size=6, cycles=10, sample_size=3, seed=21)
    with distributed.LocalCluster(
        host="127.0.0.1", n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        resource = SearchExecutorResource(kind="dask", dask_address=cluster.scheduler_address, workers=2)
        with resource.open() as plan:
            remote = run_search(cell_space(), jittery_fitness, params, plan.executor, workers=plan.workers)
    local = search(params, jittery_fitness, workers=2)
    assert len(remote.history) == 16
    assert [(e.code, e.fitness) for e in remote.history] == [(e.code, e.fitness) for e in local.history]


def test_a_plaintext_scheduler_off_this_host_and_tls_without_files_are_refused():
    with pytest.raises(ValueError, match="not on this host"):
        with SearchExecutorResource(kind="dask", dask_address="tcp://10.1.2.3:8786").open():
            pass
    with pytest.raises(ValueError, match="dask_tls_ca_file"):
        with SearchExecutorResource(kind="dask", dask_address="tls://10.1.2.3:8786").open():
            pass
    assert SearchExecutorResource(kind="dask").dask_address == "tcp://127.0.0.1:8786"  # loopback by default


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA) and its key, as PEM files."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bio-assets test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_search_over_mutual_tls_and_a_client_with_an_unknown_certificate_is_turned_away(tmp_path):
    from distributed.security import Security

    cert, key = self_signed(tmp_path)
    security = Security(
        tls_ca_file=str(cert), tls_scheduler_cert=str(cert), tls_scheduler_key=str(key), tls_worker_cert=str(cert),
        tls_worker_key=str(key), tls_client_cert=str(cert), tls_client_key=str(key), require_encryption=True,
    )  # fmt: skip
    params = EvolutionParams(population_size=4, cycles=4, sample_size=2, seed=3)
    with distributed.LocalCluster(
        host="127.0.0.1", protocol="tls", security=security, n_workers=1, threads_per_worker=1, processes=False,
        dashboard_address=None,
    ) as cluster:  # fmt: skip
        address = cluster.scheduler_address
        assert address.startswith("tls://")
        resource = SearchExecutorResource(
            kind="dask", dask_address=address, dask_tls_ca_file=str(cert), dask_tls_cert=str(cert),
            dask_tls_key=str(key), workers=1,
        )  # fmt: skip
        with resource.open() as plan:
            result = run_search(cell_space(), jittery_fitness, params, plan.executor, workers=plan.workers)
        assert len(result.history) == 8 and plan.ships_data
        # Encrypted and trusting the scheduler, but with a certificate its CA did not sign: refused.
        (tmp_path / "stranger").mkdir()
        stranger_cert, stranger_key = self_signed(tmp_path / "stranger")
        stranger = Security(
            tls_ca_file=str(cert), tls_client_cert=str(stranger_cert), tls_client_key=str(stranger_key),
            require_encryption=True,
        )  # fmt: skip
        with pytest.raises((OSError, TimeoutError)):
            distributed.Client(address, security=stranger, timeout=5)
